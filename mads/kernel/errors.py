"""The errors a caller can act on: bad input (usage) and a tool's own refusal."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class MadError(Exception):
    """Base of every error the kernel turns into one line for a user."""

    exit_code = 1


class UsageError(MadError):
    """The caller asked for something that cannot be done as asked (exit 2)."""

    exit_code = 2


class ArgumentError(UsageError):
    """A tool's arguments are missing, unexpected or of the wrong type."""


class UnknownToolError(UsageError):
    """No tool has this name; the message suggests the closest names."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f" (did you mean {' or '.join(close)}?)" if close else " (mad tools lists them)"
        super().__init__(f"unknown tool {name!r}{hint}")


class ToolError(MadError):
    """A tool refused or failed in a way it expected; the message is for the user (exit 1)."""


class MADUnavailable(MadError):
    """The MAD cannot answer: it has failed, been retired or is stopping."""


class RemoteFailure(Exception):
    """A MAD's own process failed; the message is its one line, the child's traceback travels with it.

    Not a MadError: to its supervisor it is a crash (the MAD restarts), as the same failure
    in-process would be.
    """

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.remote_traceback = traceback


class ProcessDied(RemoteFailure):
    """The MAD's process is gone or was stopped: `memory limit 256 MB`, `call timeout 5 s`, a signal, an exit."""
