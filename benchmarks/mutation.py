"""The regen gate against a mutation set: mutmut-style mutants of Horace and behaviour-preserving rewrites.

A mutant changes behaviour when a plain re-run of the recording with it differs from a plain
re-run with the original (`madtui.diff`, without the gate's learned noise), or it cannot load:
that oracle is independent of the gate's noise learning and static checks. Shared by the
`regen_mutants_caught` figure (30 mutants, 5 rewrites) and tests/cli/test_regen_mutants.py
(a few of each).
"""
from __future__ import annotations

import ast
import asyncio
import copy
import re
from pathlib import Path
from typing import Any

import mads
from madtui.diff import compare
from madtui.regen import RegenRequest, regen
from madtui.rerun import rerun
from mads.kernel import Config, Ecosystem
from mads.kernel.journal import record_session

KEY = "c" * 64
HORACE = (Path(mads.__file__).parent / "horace.py").read_text()
INPUTS = [
    "@Horace write_file path=notes/a.txt content=hello",
    '@Horace write_file path=notes/a.txt content="hello again"',
    "@Horace write_file path=b.txt content=bee",
    "@Horace read_file path=notes/a.txt",
    "@Horace read_file path=notes/a.txt version=1",
    "@Horace read_file path=missing.txt",
    "@Horace read_file path=notes/a.txt version=9",
    "@Horace list_files",
    "@Horace list_files prefix=notes/",
    "@Horace list_files prefix=./notes",
    """@Horace tag_file path=b.txt tags:='["#Todo", "urgent"]'""",
    "@Horace list_files tag=#todo",
    "@Horace get_file_info path=notes/a.txt",
    "@Horace restore_version path=notes/a.txt version=1",
    "@Horace read_file path=notes/a.txt",
    "@Horace write_file path=../escape.txt content=x",
    "@Horace write_file path=/abs.txt content=x",
    '@Horace write_file path="" content=x',
    "@Horace write_file path=. content=x",
    """@Horace tag_file path=b.txt tags:='["two words"]'""",
    "@Horace tag_file path=b.txt tags:='[]'",
    "@Horace write_file path=b.txt/c.txt content=x",
    "@Horace write_file path=notes content=x",
    "@Horace get_file_info path=b.txt",
]
MUTANTS = 30
"""Mutants in the figure (the issue asks for at least 30)."""
SWAPS: dict[type, type] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.And: ast.Or, ast.Or: ast.And,
    ast.Add: ast.Sub, ast.Sub: ast.Add,
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _mutable(node: ast.AST, docstrings: set[int]) -> bool:
    if isinstance(node, ast.Compare):
        return type(node.ops[0]) in SWAPS
    if isinstance(node, (ast.BoolOp, ast.BinOp)):
        return type(node.op) in SWAPS
    if isinstance(node, ast.Constant):
        return (isinstance(node.value, (bool, int)) or (isinstance(node.value, str) and node.value != "")) \
            and id(node) not in docstrings
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not)
    return isinstance(node, ast.If)


def _mutate(node: ast.AST) -> ast.AST:
    """The mutmut-style change of one node: an operator swapped, a constant changed, a condition negated."""
    if isinstance(node, ast.Compare):
        node.ops[0] = SWAPS[type(node.ops[0])]()
    elif isinstance(node, (ast.BoolOp, ast.BinOp)):
        node.op = SWAPS[type(node.op)]()
    elif isinstance(node, ast.Constant):
        value = node.value
        node.value = (not value) if isinstance(value, bool) else value + 1 if isinstance(value, int) else \
            f"XX{value}XX"
    elif isinstance(node, ast.UnaryOp):
        return node.operand
    elif isinstance(node, ast.If):
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    return node


class _Replace(ast.NodeTransformer):
    def __init__(self, target: int) -> None:
        self.target = target

    def visit(self, node: ast.AST) -> Any:
        if id(node) == self.target:
            return _mutate(node)
        return super().visit(node)


def mutants(source: str, count: int) -> list[tuple[str, str]]:
    """`count` mutants spread evenly over every mutable place: (label, source)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    places = [i for i, node in enumerate(ast.walk(tree)) if _mutable(node, docstrings)]
    step = max(1, len(places) // count)
    chosen = places[::step][:count]
    made = []
    for index in chosen:
        fresh = ast.parse(source)
        node = list(ast.walk(fresh))[index]
        label = f"line {getattr(node, 'lineno', '?')}: {type(node).__name__}"
        made.append((label, ast.unparse(ast.fix_missing_locations(_Replace(id(node)).visit(fresh)))))
    return made


def rewrites(source: str) -> list[tuple[str, str]]:
    """Behaviour-preserving rewrites of Horace."""
    tree = ast.parse(source)
    horace = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    methods = [n for n in horace.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    others = [n for n in horace.body if n not in methods]
    reordered = copy.deepcopy(tree)
    cls = next(n for n in reordered.body if isinstance(n, ast.ClassDef))
    cls.body = [copy.deepcopy(n) for n in others] + sorted((copy.deepcopy(m) for m in methods),
                                                           key=lambda m: m.name, reverse=True)
    helper = source.replace("digest = hashlib.sha256(data).hexdigest()", "digest = _checksum(data)").replace(
        "def _now() -> str:", "def _checksum(data: bytes) -> str:\n    return hashlib.sha256(data).hexdigest()\n\n\n"
                              "def _now() -> str:")
    renamed = re.sub(r"\bclean\b", "accepted", re.sub(r"\bdigest\b", "checksum", re.sub(r"\brows\b", "found", source)))
    private = source.replace("self._file(", "self._catalogue_row(").replace("def _file(", "def _catalogue_row(")
    return [("reformatted", ast.unparse(tree)), ("methods reordered", ast.unparse(reordered)),
            ("helper extracted", helper), ("locals renamed", renamed), ("private method renamed", private)]



async def record_horace(root: Path) -> Path:
    """A 24-input session over Horace: writes, reads, versions, lists, tags, restores, and refusals."""
    eco = Ecosystem(Config(home=root / "home", environ={"MAD_MASTER_KEY": KEY}, only=["horace", "rogers"],
                           sample_interval=0))
    with record_session(eco, root / "sessions", argv=["mutation set"], command="test") as recording:
        assert recording is not None
        async with eco:
            for text in INPUTS:
                await eco.send(text)
        return recording.path


async def evaluate(session: Path, root: Path, count: int, rewrite_count: int = 5) -> dict[str, Any]:
    """Gate `count` mutants and the rewrites with `mad regen`'s own function; the oracle's verdict beside each."""
    plain = await rerun(session, sessions=root / "oracle", mad_path=[])
    if not plain.report["same"]:
        raise RuntimeError("the original does not re-run the same")
    made = mutants(HORACE, count)
    candidates = [("mutant", label, text) for label, text in made] + [
        ("rewrite", label, text) for label, text in rewrites(HORACE)[:rewrite_count]]
    paths = []
    for number, (_, _, text) in enumerate(candidates):
        paths.append(root / f"{number:02d}.py")
        paths[-1].write_text(text)
    changes = []
    for path in paths:  # the oracle, one plain re-run after another in this process
        try:
            oracle = await rerun(session, sessions=root / "oracle", mad_path=[], replace=[path])
            changes.append(not compare(plain.journal, oracle.journal)["same"])
        except Exception:  # it cannot even start: a change of behaviour
            changes.append(True)
    limit = asyncio.Semaphore(2)

    async def judge(path: Path) -> dict[str, Any]:
        async with limit:
            return await regen(RegenRequest(mad="horace", candidate=path, home=root / "home",
                                            sessions=session.parent, against=[str(session)]))

    reports = await asyncio.gather(*(judge(path) for path in paths))
    outcomes = [{"kind": kind, "label": label, "changes": changed, "exit": report["exit"],
                 "static": report["static"], "verdict": report["verdict"]}
                for (kind, label, _), changed, report in zip(candidates, changes, reports)]
    changing = [o for o in outcomes if o["kind"] == "mutant" and o["changes"]]
    return {"mutants": len(made), "behaviour_changing": len(changing),
            "caught": sum(1 for o in changing if o["exit"] == 1),
            "missed": [o for o in changing if o["exit"] != 1],
            "rewrites": len(candidates) - len(made),
            "false_alarms": [o for o in outcomes if o["kind"] == "rewrite" and o["exit"] == 1],
            "equivalent_flagged": sum(1 for o in outcomes if o["kind"] == "mutant" and not o["changes"]
                                      and o["exit"] == 1)}
