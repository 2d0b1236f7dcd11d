"""Hot reload: a regenerated MAD module is loaded fresh, checked, and swapped in on the same mailbox.

Every step that can fail (load, build, migrations, self-check) runs before the swap is
committed; if one fails, the old version keeps serving, its state is as before, and a
`reload_failed` event carries the error with file and line. A change under mads/kernel
cannot be swapped in place: it is reported as needing a restart.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .discovery import DiscoveryError, MADModule
from .errors import UsageError
from .events import Reload, ReloadFailed
from .mad import MAD
from .supervisor import MADState, one_line

if TYPE_CHECKING:
    from .config import Config
    from .hub import EventHub
    from .supervisor import MADRunner


class Reloadable(Protocol):
    """What hot reload needs of the ecosystem it swaps modules in."""

    config: Config
    hub: EventHub
    runners: dict[str, MADRunner]
    modules: list[MADModule]

    def load_module(self, path: Path) -> MADModule: ...

    def replace_module(self, old: MADModule | None, new: MADModule | None) -> None: ...

    async def add_mad(self, cls: type[MAD]) -> MADRunner: ...

    async def retire_mad(self, name: str, reason: str) -> None: ...

    async def tools_changed(self) -> None: ...

log = logging.getLogger("mads.kernel")

DRAIN_SECONDS = 5.0
"""How long a running handler may finish before it is cancelled with an error reply."""


def kernel_folder() -> Path:
    return Path(__file__).resolve().parent


def _where(exc: BaseException, path: Path) -> str:
    """`file:line` of the deepest frame in the module's file, else the file alone."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve():
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{path}:{line}" if line else str(path)


class ReloadError(Exception):
    """One step of a reload failed; the message names file and line."""


class Reloader:
    """Loads changed MAD modules and swaps them into a running ecosystem."""

    def __init__(self, eco: Reloadable) -> None:
        self.eco = eco
        self._lock = asyncio.Lock()
        self.reloads = 0
        self.failures = 0

    def module_of(self, path: Path) -> MADModule | None:
        resolved = path.resolve()
        return next((m for m in self.eco.modules if m.path.resolve() == resolved), None)

    def is_kernel(self, path: Path) -> bool:
        return path.resolve().is_relative_to(kernel_folder())

    async def file_changed(self, path: Path) -> dict[str, Any]:
        """React to one saved, added or deleted module file."""
        async with self._lock:
            if self.is_kernel(path):
                message = f"{path} is part of the kernel: restart the ecosystem to use it"
                self.eco.hub.emit(ReloadFailed(mad="kernel", path=str(path), error=message, restart_needed=True))
                log.warning("%s", message)
                return {"ok": False, "error": message, "restart_needed": True}
            old = self.module_of(path)
            if not path.exists():
                if old is None:
                    return {"ok": True, "changed": []}
                return await self._retire_module(old)
            if old is not None and old.source == path.read_text(encoding="utf-8"):
                return {"ok": True, "changed": []}
            return await self._load(path, old)

    async def reload_mad(self, name: str) -> dict[str, Any]:
        """Reload the module a MAD came from (mad_reload)."""
        mad = name.lower().lstrip("@")
        module = next((m for m in self.eco.modules if any(c.name == mad for c in m.mads)), None)
        if module is None:
            raise UsageError(f"no MAD named {name!r} loaded from a module file")
        async with self._lock:
            return await self._load(module.path, module, force=True)

    async def _load(self, path: Path, old: MADModule | None, force: bool = False) -> dict[str, Any]:
        eco = self.eco
        started = time.perf_counter()
        try:
            new = eco.load_module(path)
        except DiscoveryError as exc:
            return self._failed(None, path, str(exc), old)
        if old is not None and new.sha256 == old.sha256 and not force:
            return {"ok": True, "changed": []}
        old_names = {c.name for c in old.mads} if old else set()
        new_names = {c.name for c in new.mads}
        taken = {n for n in new_names - old_names if n in eco.runners}
        if taken:
            return self._failed(None, path, f"{path}: MAD {sorted(taken)[0]!r} is already defined elsewhere", old)
        built: dict[str, MAD] = {}
        for cls in new.mads:
            try:
                if cls.name in eco.runners:
                    built[cls.name] = eco.runners[cls.name].build(cls)
            except Exception as exc:
                return self._failed(cls.name, path, f"{_where(exc, path)}: building {cls.name} failed: "
                                                    f"{one_line(exc)}", old, exc)
        changed: list[dict[str, Any]] = []
        for cls in new.mads:
            if cls.name not in eco.runners:
                continue
            try:
                await self._swap(cls, built[cls.name], path)
            except ReloadError as exc:
                return self._failed(cls.name, path, str(exc), old)
            changed.append({"mad": cls.name, "action": "reloaded"})
        eco.replace_module(old, new)
        for cls in new.mads:
            if cls.name not in old_names and cls.name not in eco.runners:
                await eco.add_mad(cls)
                changed.append({"mad": cls.name, "action": "added"})
        for name in sorted(old_names - new_names):
            await eco.retire_mad(name, f"{name} is no longer defined in {path}")
            changed.append({"mad": name, "action": "retired"})
        seconds = time.perf_counter() - started
        for entry in changed:
            eco.hub.emit(Reload(mad=entry["mad"], action=entry["action"], path=str(path),
                                old_hash=old.sha256 if old else None, new_hash=new.sha256,
                                duration_ms=round(seconds * 1000, 3)))
        self.reloads += 1
        await eco.tools_changed()
        log.info("reloaded %s (%s) in %.0f ms", path.name, new.short_hash, seconds * 1000)
        return {"ok": True, "changed": changed, "hash": new.sha256, "duration_ms": round(seconds * 1000, 3)}

    async def _swap(self, cls: type[MAD], instance: MAD, path: Path) -> None:
        """Pause the old version, migrate and self-check in one transaction, then swap; else roll back."""
        runner = self.eco.runners[cls.name]
        was_paused = runner.state == MADState.PAUSED
        runner.pause()
        try:
            try:
                await asyncio.wait_for(runner.wait_idle(), DRAIN_SECONDS)
            except asyncio.TimeoutError:
                await runner.interrupt()  # its handler gets CancelledError and answers with an error
            prepare = getattr(instance, "prepare", None)
            if prepare is not None:  # isolated: its new process migrates and checks, the old one serves on
                try:
                    await prepare(check=True)
                except Exception as exc:
                    raise ReloadError(one_line(exc)) from exc
            else:
                await self._migrate_and_check(runner.ctx.state, cls, instance, path)
            await runner.replace(cls, instance)
        finally:
            if not was_paused:
                runner.resume()

    @staticmethod
    async def _migrate_and_check(db: Any, cls: type[MAD], instance: MAD, path: Path) -> None:
        """The new version's migrations and self_check, in one transaction: all or nothing."""
        try:
            with db.atomic():
                if cls.migrations is not None:
                    cls.migrations.apply(db)
                check = getattr(instance, "self_check", None)
                if check is not None:
                    outcome = check()
                    if inspect.isawaitable(outcome):
                        await outcome
        except Exception as exc:
            raise ReloadError(f"{_where(exc, path)}: {'self_check' if _in_self_check(exc) else 'migration'} "
                              f"failed: {one_line(exc)}") from exc

    async def _retire_module(self, old: MADModule) -> dict[str, Any]:
        changed = []
        for cls in old.mads:
            await self.eco.retire_mad(cls.name, f"{cls.name} was retired: {old.path} was deleted")
            changed.append({"mad": cls.name, "action": "retired"})
            self.eco.hub.emit(Reload(mad=cls.name, action="retired", path=str(old.path), old_hash=old.sha256,
                                     new_hash=None))
        self.eco.replace_module(old, None)
        await self.eco.tools_changed()
        return {"ok": True, "changed": changed}

    def _failed(self, mad: str | None, path: Path, error: str, old: MADModule | None,
                exc: BaseException | None = None) -> dict[str, Any]:
        self.failures += 1
        names = [mad] if mad else [c.name for c in old.mads] if old else [None]
        for name in names:
            self.eco.hub.emit(ReloadFailed(mad=name, path=str(path), error=error,
                                           traceback="".join(traceback.format_exception(exc)) if exc else None))
        log.warning("reload of %s failed, the previous version keeps serving: %s", path.name, error)
        return {"ok": False, "error": error}


def _in_self_check(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "self_check":
            return True
        tb = tb.tb_next
    return False


def watched_folders(eco: Reloadable) -> list[Path]:
    """The mads package folder (kernel included, to notice kernel changes) and every MAD_PATH folder."""
    import mads

    folders = [Path(p) for p in mads.__path__] if eco.config.include_package else []
    return folders + [p for p in eco.config.mad_path if p.is_dir()]


def is_module_file(path: Path) -> bool:
    name = path.name
    return name.endswith(".py") and not name.startswith((".", "_")) and "__pycache__" not in path.parts


async def watch(eco: Reloadable, reloader: Reloader, *, debounce_ms: int = 30, step_ms: int = 10,
                stop: asyncio.Event | None = None) -> None:
    """Watch the module folders with watchfiles and reload what changed, until cancelled."""
    folders = watched_folders(eco)
    if not folders:
        return
    try:
        await _watch(eco, reloader, folders, debounce_ms, step_ms, stop, polling=False)
    except Exception as exc:  # e.g. no inotify instance left: keep reloading, by polling
        log.warning("watching MAD modules failed (%s); polling them instead", one_line(exc))
        await _watch(eco, reloader, folders, debounce_ms, step_ms, stop, polling=True)


async def _watch(eco: Reloadable, reloader: Reloader, folders: list[Path], debounce_ms: int, step_ms: int,
                 stop: asyncio.Event | None, *, polling: bool) -> None:
    import watchfiles

    rescanned = False
    async for changes in watchfiles.awatch(*folders, debounce=debounce_ms, step=step_ms, stop_event=stop,
                                           rust_timeout=300, yield_on_timeout=True, force_polling=polling,
                                           poll_delay_ms=100,
                                           watch_filter=lambda change, p: is_module_file(Path(p))):
        paths = {Path(p) for _, p in changes}
        if not rescanned:  # the watch is set up now: catch what changed while it was being set up
            rescanned = True
            paths |= {p for folder in folders for p in folder.glob("*.py") if is_module_file(p)}
            paths |= {m.path for m in eco.modules}
        for path in sorted(paths):
            try:
                await reloader.file_changed(path)
            except Exception as exc:  # a reload bug must never take the ecosystem down
                log.error("reloading %s failed unexpectedly: %s", path, one_line(exc))
