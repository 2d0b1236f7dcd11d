"""Finding MADs: every module of the `mads` package and every `*.py` file in each MAD_PATH folder.

Modules from MAD_PATH are loaded by path into fresh module objects (never importlib.reload),
so a regenerated file is simply loaded again.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .errors import UsageError
from .mad import MAD


@dataclass
class MADModule:
    """One loaded module of MADs: where it came from, its exact source and hash, its MAD classes."""

    name: str
    path: Path
    source: str
    sha256: str
    module: ModuleType
    mads: list[type[MAD]] = field(default_factory=list)

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


class DiscoveryError(UsageError):
    """A MAD module could not be loaded, or two MADs share a name."""


def mads_in(module: ModuleType) -> list[type[MAD]]:
    """The MAD classes defined in this module (imported ones belong to their own module)."""
    return [
        obj for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, MAD) and obj is not MAD and obj.__module__ == module.__name__
    ]


def _record(name: str, module: ModuleType, path: Path, source: str) -> MADModule:
    record = MADModule(name, path, source, hashlib.sha256(source.encode()).hexdigest(), module, mads_in(module))
    for cls in record.mads:
        setattr(cls, "__mad_source__", (str(path), source))  # what an isolated instance loads in its own process
    return record


def module_name_for(path: Path) -> str:
    """A module name of its own for a MAD file, stable for its path."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    return f"mad_path_{digest}_{path.stem}"


def load_path_module(path: Path, source: str | None = None) -> MADModule:
    """Load a MAD module from a file (or its given text) into a fresh module object; DiscoveryError names
    file and line."""
    if source is None:
        source = path.read_text(encoding="utf-8")
    module_name = module_name_for(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DiscoveryError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        # Compiled from the text just read, never from __pycache__: a save within the same second and of
        # the same size would otherwise run the previous version's cached bytecode.
        exec(compile(source, str(path), "exec"), module.__dict__)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise DiscoveryError(f"{exc.filename or path}:{exc.lineno}: SyntaxError: {exc.msg}") from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        tb = exc.__traceback__
        line = 0
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        raise DiscoveryError(f"{path}:{line}: {type(exc).__name__}: {exc}") from exc
    return _record(module_name, module, path, source)


def package_modules() -> list[MADModule]:
    """Every MAD module of the `mads` package (the kernel excluded)."""
    import mads

    found = []
    for info in pkgutil.iter_modules(mads.__path__):
        if info.name.startswith("_") or info.name == "kernel":
            continue
        module = importlib.import_module(f"mads.{info.name}")
        path = Path(module.__file__ or "")
        found.append(_record(module.__name__, module, path, path.read_text(encoding="utf-8")))
    return found


def discover(mad_path: list[Path], include_package: bool = True,
             load: Callable[[Path], MADModule] = load_path_module, replace: list[Path] | None = None) -> list[MADModule]:
    """Every MAD module, package first then MAD_PATH folders in order; a MAD name may appear once.

    `load` reads one MAD_PATH file (the ecosystem's never runs an isolated module in the core).
    Each file of `replace` takes the place of the module that defines the same MADs (a candidate
    version re-run or gated by `mad rerun --module` and `mad regen`).
    """
    modules = package_modules() if include_package else []
    for folder in mad_path:
        if not folder.is_dir():
            raise DiscoveryError(f"MAD_PATH folder not found: {folder}")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith(("_", ".")):
                continue
            modules.append(load(path))
    for path in replace or []:
        if not path.is_file():
            raise DiscoveryError(f"module file not found: {path}")
        candidate = load(path)
        names = {cls.name for cls in candidate.mads}
        if not names:
            raise DiscoveryError(f"{path}: defines no MAD")
        modules = [m for m in modules if not names & {cls.name for cls in m.mads}] + [candidate]
    seen: dict[str, Path] = {}
    for mod in modules:
        for cls in mod.mads:
            if cls.name in seen:
                raise DiscoveryError(f"MAD {cls.name!r} is defined twice: {seen[cls.name]} and {mod.path}")
            seen[cls.name] = mod.path
    return modules
