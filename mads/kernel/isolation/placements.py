"""Placement: which MADs of an ecosystem run isolated, inside what, and with which of MAD_HOME's folders."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..config import Config
from ..context import CoreContext, state_path
from ..credentials import KEEPERS
from ..discovery import MADModule, load_path_module
from ..errors import UsageError
from ..mad import MAD
from . import DEFAULT, sandbox
from .isolated import IsolatedMAD
from .port import Placement
from .remote import remote_module

log = logging.getLogger("mads.kernel")


class Placements:
    """The isolation settings of one ecosystem: the names forced out of the core and the sandbox in use."""

    def __init__(self, config: Config) -> None:
        self.home = config.home
        self.sandbox = sandbox.choose(config.sandbox)
        """`bwrap` or `rlimits`, from MAD_SANDBOX and whether bubblewrap is installed."""
        self.chosen = config.sandbox
        self.forced = frozenset(n.lower().lstrip("@") for n in config.isolate)

    def load_module(self, path: Path) -> MADModule:
        """Load one MAD file; a module whose MADs all run isolated is only described, by a sandboxed child."""
        source = path.read_text(encoding="utf-8")
        remote = remote_module(path, source, self.sandbox, self.forced)
        return remote if remote is not None else load_path_module(path, source)

    def is_isolated(self, cls: type[MAD]) -> bool:
        return cls.isolation is not None or cls.name in self.forced

    def check(self, names: set[str]) -> None:
        """UsageError for a forced name that is no MAD, or a keeper of the kernel's keys."""
        unknown = sorted(self.forced - names)
        if unknown:
            raise UsageError(f"--isolate: no MAD named {', '.join(unknown)} (the MADs are {', '.join(sorted(names))})")
        keepers = sorted(self.forced & set(KEEPERS))
        if keepers:
            raise UsageError(f"--isolate: {keepers[0]} keeps the kernel's keys and always runs in the core")

    def say_walls(self, isolated: list[str]) -> None:
        """One line when isolated MADs get no filesystem or network wall (no bubblewrap)."""
        if isolated and self.sandbox == "rlimits":
            log.warning("isolation: %s run with resource limits only, no filesystem or network wall: %s",
                        ", ".join(isolated), "MAD_SANDBOX=rlimits" if self.chosen == "rlimits"
                        else "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)")

    def instance(self, cls: type[MAD], ctx: CoreContext, on_death: Callable[[str], Awaitable[None]]) -> Any:
        """A MAD's instance: in this process, or a stand-in for one in its own process."""
        if not self.is_isolated(cls):
            return cls(ctx)
        return IsolatedMAD(cls, ctx, self.placement(cls), on_death)

    def placement(self, cls: type[MAD]) -> Placement:
        """Its limits, the sandbox, and the folders it may write: its state folder, then those it declares."""
        home = self.home.resolve()
        writable = [state_path(home, cls.name).parent]
        for name in cls.home_folders:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise UsageError(f"{cls.name}.home_folders: {name!r} is not a folder inside MAD_HOME")
            writable.append(home / name)
        for folder in writable:
            folder.mkdir(parents=True, exist_ok=True)
        return Placement(cls.isolation or DEFAULT, self.sandbox, home, writable)
