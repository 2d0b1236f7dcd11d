"""A one-line CPU trace for a pane header: one bar per second, against a fixed floor of scale.

Textual's Sparkline scales to its own largest sample, so a MAD idling at 0.1% draws full bars
the moment it wakes. Here the scale is at least FLOOR_PERCENT of a core: noise stays a flat
line, and a MAD that really works draws tall bars; above the floor it scales to its own peak.
"""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"
FLOOR_PERCENT = 10.0


def levels(samples: Sequence[float], width: int) -> list[int]:
    """The bar (0-7) of each of the last `width` samples, oldest first, padded with zeros on the left."""
    if width <= 0:
        return []
    recent = [max(0.0, float(v)) for v in samples[-width:]]
    ceiling = max(FLOOR_PERCENT, *recent) if recent else FLOOR_PERCENT
    top = len(BARS) - 1
    bars = [min(top, int(v / ceiling * top + 0.5)) for v in recent]
    return [0] * (width - len(bars)) + bars


class CpuTrace(Widget):
    """The last minute of one MAD's CPU, newest on the right."""

    DEFAULT_CSS = """
    CpuTrace { height: 1; width: 1fr; }
    CpuTrace > .cpu-trace--idle { color: $success; }
    CpuTrace > .cpu-trace--busy { color: $warning; }
    CpuTrace > .cpu-trace--hot { color: $error; }
    """
    COMPONENT_CLASSES = {"cpu-trace--idle", "cpu-trace--busy", "cpu-trace--hot"}

    samples: reactive[tuple[float, ...]] = reactive(tuple)

    def render(self) -> Text:
        styles = [self.get_component_rich_style(f"cpu-trace--{name}") for name in ("idle", "busy", "hot")]
        text = Text(no_wrap=True, overflow="crop")
        for level in levels(self.samples, self.size.width):
            text.append(BARS[level], styles[0 if level < 3 else 1 if level < 6 else 2])
        return text
