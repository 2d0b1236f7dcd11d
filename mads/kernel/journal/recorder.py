"""Recording a session: one journal file per ecosystem run, from session_start to session_end."""
from __future__ import annotations

import os
import platform
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..events import REDACTED, SessionEnd, SessionStart, looks_secret
from . import snapshot
from .capture import capture_output
from .writer import JournalWriter

if TYPE_CHECKING:
    from ..ecosystem import Ecosystem

ENV_PREFIXES = ("MAD_", "OPENAI_", "ANTHROPIC_")


def new_session_path(sessions: Path) -> Path:
    """sessions/<UTC time to the millisecond>-<short id>.db, so names sort in the order sessions started."""
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond // 1000:03d}Z"
    return sessions / f"{stamp}-{secrets.token_hex(3)}.db"


def package_version() -> str:
    try:
        from importlib.metadata import version
        return version("mad")
    except Exception:  # not installed as a distribution (a bare checkout)
        return "unknown"


def redacted_argv(argv: Sequence[str]) -> list[str]:
    """argv with the values of secret-looking options and key=value pairs replaced."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, sep, _ = arg.lstrip("-").partition("=")
        name = name.rstrip(":")
        if looks_secret(name):
            if sep:
                out.append(arg.split("=", 1)[0] + "=" + REDACTED)
            else:
                out.append(arg)
                hide_next = arg.startswith("--")
            continue
        out.append(arg)
    return out


def describe_config(eco: Ecosystem) -> dict[str, Any]:
    cfg = eco.config
    env = {k: (REDACTED if looks_secret(k) else v) for k, v in sorted(cfg.environ.items())
           if k.startswith(ENV_PREFIXES)}
    return {"home": str(cfg.home), "mad_path": [str(p) for p in cfg.mad_path], "provider": cfg.provider,
            "isolate": list(cfg.isolate), "sandbox": eco.placements.sandbox, "environment": env}


class Recording:
    """A journal attached to an ecosystem; `path` is where it lives."""

    def __init__(self, eco: Ecosystem, path: Path, argv: Sequence[str], command: str) -> None:
        self.eco = eco
        self.path = path
        self.session_id = path.stem
        self.writer = JournalWriter(path)
        self.started = time.time()
        self.command = command
        self.appending = self.writer.committed_seq > 0
        if not self.appending:
            self.writer.set_meta("session_id", self.session_id)
            self.writer.set_meta("started", self.started)
            self.writer.set_meta("argv", eco.hub.redactor.value(redacted_argv(argv)))
            self.writer.set_meta("command", command)
            self.writer.set_meta("config", eco.hub.redactor.value(describe_config(eco)))
            self.writer.set_meta("version", package_version())
            self.writer.set_meta("python", sys.version.split()[0])
            self.writer.set_meta("platform", platform.platform())
        for module in eco.modules:
            self.add_module(module)
        eco.module_listeners.append(self.add_module)
        if not self.appending:
            snapshot.store(path, snapshot.take(eco.config.home))

    def add_module(self, module: Any) -> None:
        self.writer.add_module(module.sha256, module.name, str(module.path), [c.name for c in module.mads],
                               module.source)

    def close(self, reason: str = "stopped") -> None:
        hub = self.eco.hub
        hub.emit(SessionEnd(reason=reason, duration_s=round(time.time() - self.started, 3), events=dict(hub.counts)))
        hub.remove_sink(self.writer)
        self.writer.close()


@contextmanager
def record_session(eco: Ecosystem, sessions: Path | None, *, journal: Path | None = None,
                   argv: Sequence[str] | None = None, command: str = "",
                   capture_stdout: bool = False) -> Iterator[Recording | None]:
    """Record everything the ecosystem does while the block runs; None sessions and journal: no recording.

    Call it after `eco.load()` and before `eco.start()` so the start itself is recorded.
    """
    if journal is None and sessions is None:
        with capture_output(eco.hub, stdout=capture_stdout):
            yield None
        return
    eco.load()
    path = journal or new_session_path(sessions)  # type: ignore[arg-type]
    try:
        recording = Recording(eco, path, argv if argv is not None else sys.argv, command)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot record into {path.parent}: {reason} (--sessions DIR, or --no-record)") from None
    eco.hub.add_sink(recording.writer)
    node = getattr(eco, "node", None)
    if node is not None:  # a distributed ecosystem: the other processes' events join this journal
        node.record_into(recording.writer)
    eco.hub.emit(SessionStart(session_id=recording.session_id, command=command, pid=os.getpid(),
                              appending=recording.appending, mads=list(eco.runners),
                              modules={m.name: m.sha256 for m in eco.modules},
                              versions={cls.name: m.sha256 for m in eco.modules for cls in m.mads}))
    reason = "stopped"
    try:
        with capture_output(eco.hub, stdout=capture_stdout):
            yield recording
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise
    finally:
        recording.close(reason)
