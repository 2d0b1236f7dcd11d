"""A measurement of one MAD, with progress while it is taken: a py-spy profile (its share of the samples
and its top functions) or a memory reading (the bytes it holds and where it allocated them)."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from .sizes import size_text

HINT = "p profiles the selected MAD (py-spy)\nm reads memory per MAD (tracemalloc)"


def result_text(mad: str, profile: dict[str, Any]) -> Text:
    """What the profile says about one MAD: its share of the samples, the others' shares, then its functions."""
    total = profile.get("samples", 0)
    seconds = profile.get("seconds", 0)
    owners: dict[str, Any] = profile.get("mads", {})
    entry = owners.get(mad)
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    if entry:
        text.append(f"{mad}: {entry['share']:.0%}", style="bold")
        text.append(f" of {total} samples in {seconds:g} s")
    else:
        text.append(f"{mad} was on none of the {total} stacks sampled in {seconds:g} s (idle)")
    others = ", ".join(f"{name} {figures['share']:.0%}" for name, figures in owners.items() if name != mad)
    if others:
        text.append(f"\nothers: {others}", style="dim")
    for function in (entry or {}).get("top", []):
        text.append(f"\n{function['samples']:>6}  ", style="dim")
        text.append(str(function["function"]))
    return text


def memory_text(mad: str, reading: dict[str, Any]) -> Text:
    """What a memory reading says about one MAD: what it holds, the others, then its allocation sites."""
    total = reading.get("bytes", 0)
    seconds = reading.get("seconds", 0)
    span = "since the start" if reading.get("since") == "start" else f"for {seconds:g} s"
    owners: dict[str, Any] = reading.get("mads", {})
    entry = owners.get(mad)
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    if entry:
        text.append(f"{mad}: {size_text(entry['bytes'])} ({entry['share']:.0%})", style="bold")
        text.append(f" of {size_text(total)} held, traced {span}")
    else:
        text.append(f"{mad} holds none of the {size_text(total)} traced {span}")
    others = ", ".join(f"{name} {size_text(figures['bytes'])}" for name, figures in owners.items() if name != mad)
    if others:
        text.append(f"\nothers: {others}", style="dim")
    for site in (entry or {}).get("top", []):
        text.append(f"\n{size_text(site['bytes']):>9} {site['blocks']:>6} blocks  ", style="dim")
        text.append(str(site["where"]))
    return text


class ProfilePanel(VerticalScroll):
    """Shows a hint, the progress of a running profile, or its result for one MAD (scrolls when focused)."""

    DEFAULT_CSS = """
    ProfilePanel { height: 1fr; }
    ProfilePanel > #profile-progress { height: 1; display: none; }
    ProfilePanel.-running > #profile-progress { display: block; }
    ProfilePanel > #profile-body { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    running: reactive[bool] = reactive(False)
    """Whether a profile is being taken."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mad: str | None = None
        self.profile: dict[str, Any] | None = None
        self.kind = "profile"
        """What the panel measures or shows: profile or memory."""

    def compose(self) -> ComposeResult:
        yield ProgressBar(id="profile-progress", show_eta=False)
        yield Static(HINT, id="profile-body")

    def on_mount(self) -> None:
        self.border_title = "profile"

    def watch_running(self, running: bool) -> None:
        self.set_class(running, "-running")

    def started(self, mad: str, seconds: float, kind: str = "profile") -> None:
        self.mad, self.kind = mad, kind
        self.running = True
        self.border_title = f"{kind} · {mad}"
        self.query_one(ProgressBar).update(total=seconds, progress=0)
        doing = "sampling" if kind == "profile" else "tracing allocations"
        self.query_one("#profile-body", Static).update(f"{doing} for {seconds:g} s…")

    def advanced(self, done: float, total: float | None, message: str | None) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)
        if message:
            self.query_one("#profile-body", Static).update(message)

    def finished(self, mad: str, profile: dict[str, Any], kind: str = "profile") -> None:
        self.mad, self.profile, self.kind = mad, profile, kind
        self.running = False
        self.border_title = f"{kind} · {mad}"
        shown = result_text(mad, profile) if kind == "profile" else memory_text(mad, profile)
        self.query_one("#profile-body", Static).update(shown)

    def failed(self, error: str) -> None:
        self.running = False
        self.query_one("#profile-body", Static).update(Text(f"{self.kind} failed: {error}", no_wrap=True,
                                                            overflow="ellipsis"))

    @property
    def text(self) -> str:
        """What the panel says now, as plain text."""
        body = self.query_one("#profile-body", Static).content
        return body.plain if isinstance(body, Text) else str(body)
