"""A py-spy profile of one MAD: its share of the samples and its top functions, with progress while sampling."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

HINT = "p profiles the selected MAD (py-spy)"


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

    def compose(self) -> ComposeResult:
        yield ProgressBar(id="profile-progress", show_eta=False)
        yield Static(HINT, id="profile-body")

    def on_mount(self) -> None:
        self.border_title = "profile"

    def watch_running(self, running: bool) -> None:
        self.set_class(running, "-running")

    def started(self, mad: str, seconds: float) -> None:
        self.mad = mad
        self.running = True
        self.border_title = f"profile · {mad}"
        self.query_one(ProgressBar).update(total=seconds, progress=0)
        self.query_one("#profile-body", Static).update(f"sampling for {seconds:g} s…")

    def advanced(self, done: float, total: float | None, message: str | None) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)
        if message:
            self.query_one("#profile-body", Static).update(message)

    def finished(self, mad: str, profile: dict[str, Any]) -> None:
        self.mad, self.profile = mad, profile
        self.running = False
        self.border_title = f"profile · {mad}"
        self.query_one("#profile-body", Static).update(result_text(mad, profile))

    def failed(self, error: str) -> None:
        self.running = False
        self.query_one("#profile-body", Static).update(Text(f"profile failed: {error}", no_wrap=True,
                                                            overflow="ellipsis"))

    @property
    def text(self) -> str:
        """What the panel says now, as plain text."""
        body = self.query_one("#profile-body", Static).content
        return body.plain if isinstance(body, Text) else str(body)
