"""Isolation: a MAD in its own limited process, its module unchanged (core and periphery).

A MAD asks for it with a class attribute, `isolation = Isolation(memory_mb=512, ...)`, or a
user forces it (`--isolate NAME`, `MAD_ISOLATE`). The core keeps the MAD's mailbox, state
of supervision and accounts; its instance lives in a child process behind a channel (a
port, in Erlang's words) and reaches the ecosystem through the same context, served across.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Isolation:
    """The limits of an isolated MAD's process; the defaults apply to `--isolate NAME` too."""

    memory_mb: int = 512
    """Address space of the process (RLIMIT_AS); an allocation past it fails and the MAD restarts."""
    cpu_seconds: float = 60
    """CPU time of the process in its life (RLIMIT_CPU); past it the process is killed and restarts."""
    call_timeout: float = 30.0
    """Seconds a call may run in the process (waits on the core, such as an LLM answer, not counted)."""
    network: bool = False
    """Whether the process may use the network (only enforced inside bubblewrap)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.memory_mb, int) and self.memory_mb >= 64):
            raise ValueError(f"Isolation.memory_mb must be an integer of at least 64, got {self.memory_mb!r}")
        if not self.cpu_seconds > 0:
            raise ValueError(f"Isolation.cpu_seconds must be positive, got {self.cpu_seconds!r}")
        if not self.call_timeout > 0:
            raise ValueError(f"Isolation.call_timeout must be positive, got {self.call_timeout!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = Isolation()

__all__ = ["DEFAULT", "Isolation"]
