"""Isolated MAD_PATH modules are never run in the core: their MADs are learnt from a sandboxed child.

The core reads a module's text (AST only) to see which MADs it defines and whether each is
isolated (`isolation = ...` in its class, or named by `--isolate`). A module whose MADs are
all isolated is described by a child process under the same sandbox and limits; the core
builds stand-in classes from that description (name, tools with their schemas) and
validation of arguments happens in the MAD's own process.
"""
from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..discovery import DiscoveryError, MADModule, module_name_for
from ..mad import MAD, ToolSpec
from . import DEFAULT, Isolation
from .sandbox import bwrap_command, environment

DESCRIBE_SECONDS = 60.0


@dataclass(frozen=True)
class Planned:
    """A MAD class as a module's text shows it."""

    class_name: str
    mad: str
    isolated: bool
    """Declared in the class (or an in-module base): `isolation = ...`."""


def scan(source: str) -> list[Planned]:
    """The MAD classes a module's text defines at its top level (bases named MAD, or such classes of its own)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: dict[str, Planned] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(base) for base in node.bases]
        local = [found[b] for b in bases if b in found]
        if not local and not any(b == "MAD" or b.endswith(".MAD") for b in bases):
            continue
        assigned = {target.id: stmt.value for stmt in node.body if isinstance(stmt, (ast.Assign, ast.AnnAssign))
                    for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
                    if isinstance(target, ast.Name) and stmt.value is not None}
        name_node = assigned.get("name")
        if isinstance(name_node, ast.Constant) and isinstance(name_node.value, str) and name_node.value:
            mad = name_node.value.lower()
        else:
            mad = node.name.lower()
        isolated = "isolation" in assigned or any(p.isolated for p in local)
        found[node.name] = Planned(node.name, mad, isolated)
    return list(found.values())


def describe_command(path: Path, sandbox: str, isolation: Isolation = DEFAULT) -> list[str]:
    command = [sys.executable, "-s", "-P", "-m", "mads.kernel.isolation.child", "--describe", str(path),
               "--limits", json.dumps(isolation.to_dict())]
    if sandbox == "bwrap":
        return bwrap_command(command, network=False, writable=[], workdir=Path("/tmp"))
    return command


def describe(path: Path, source: str, sandbox: str) -> list[dict[str, Any]]:
    """What the module defines, learnt in a sandboxed child; DiscoveryError says why it could not load."""
    with tempfile.TemporaryDirectory(prefix="mad-describe-") as folder:
        try:
            done = subprocess.run(describe_command(path, sandbox), input=source, capture_output=True, text=True,
                                  env=environment(Path(folder), sandbox), cwd=folder, timeout=DESCRIBE_SECONDS,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise DiscoveryError(f"{path}: loading it took more than {DESCRIBE_SECONDS:g} s") from None
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise DiscoveryError(f"{path}: could not be described in its sandbox: {detail}") from None
    if "error" in answer:
        raise DiscoveryError(answer["error"])
    mads: list[dict[str, Any]] = answer["mads"]
    return mads


def description(cls: type[MAD]) -> dict[str, Any]:
    """A MAD class as plain data: enough to list and call its tools where its module is not loaded."""
    isolation = cls.isolation
    return {
        "class": cls.__name__, "name": cls.name, "description": cls.description, "doc": cls.__doc__,
        "observes_all": cls.observes_all, "max_imperator_steps": cls.max_imperator_steps,
        "isolation": isolation.to_dict() if isinstance(isolation, Isolation) else None,
        "tools": [{"name": spec.name, "method": spec.method, "description": spec.description,
                   "input_schema": spec.input_schema, "secret_params": sorted(spec.secret_params),
                   "is_async": spec.is_async, "long_running": spec.long_running}
                  for spec in cls.tools.values()],
    }


def stand_in(description: dict[str, Any], module_name: str, path: Path, source: str) -> type[MAD]:
    """A class that stands in for a MAD whose module is not loaded here (isolated, or hosted elsewhere)."""
    isolation = description.get("isolation")
    attributes = {
        "__module__": module_name, "__doc__": description.get("doc"), "name": description["name"],
        "description": description["description"], "observes_all": description["observes_all"],
        "max_imperator_steps": description["max_imperator_steps"],
        "isolation": Isolation(**isolation) if isolation else None, "__mad_source__": (str(path), source),
    }
    cls: type[MAD] = type(description["class"], (MAD,), attributes)
    cls.tools = {tool["name"]: ToolSpec(
        name=tool["name"], mad=description["name"], method=tool["method"], description=tool["description"],
        input_schema=tool["input_schema"], model=None, secret_params=frozenset(tool["secret_params"]),
        is_async=tool["is_async"], long_running=tool["long_running"]) for tool in description["tools"]}
    return cls


def remote_module(path: Path, source: str, sandbox: str, isolate: frozenset[str]) -> MADModule | None:
    """The module as stand-ins when every MAD it defines runs isolated; None when any runs in the core."""
    planned = scan(source)
    if not planned or not all(p.isolated or p.mad in isolate for p in planned):
        return None
    described = describe(path, source, sandbox)
    if not all(d["isolation"] or d["name"] in isolate for d in described):
        return None  # a MAD the text did not show (an imported base) runs in the core: the core loads it
    name = module_name_for(path)
    mads = [stand_in(d, name, path, source) for d in described]
    return MADModule(name, path, source, hashlib.sha256(source.encode()).hexdigest(), types.ModuleType(name), mads)
