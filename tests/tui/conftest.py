"""Fixtures of the TUI tests: gated `mad regen` candidates of a Counter MAD, for the Regen screen."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from madtui.regen import RegenRequest, regen
from mads.kernel import Config, Ecosystem
from mads.kernel.journal import record_session

KEY = "d" * 64
COUNTER = '''
"""Counter: adds numbers."""
from typing import Any

from sqlite_utils import Migrations

from mads.kernel import MAD, tool

migrations = Migrations("counter")


@migrations()
def m001_total(db: Any) -> None:
    db.execute("CREATE TABLE total (n INTEGER NOT NULL)")
    db.execute("INSERT INTO total VALUES (0)")


class Counter(MAD):
    """Adds numbers to a running total."""

    migrations = migrations

    @tool
    async def add(self, n: int) -> dict:
        """Add n to the total."""
        self.ctx.state.execute("UPDATE total SET n = n + ?", [n])
        return {"added": n, "total": self.ctx.state.execute("SELECT n FROM total").fetchone()[0]}
'''
REWRITE = COUNTER.replace("Add n to the total.\"\"\"\n", "Add n to the total.\"\"\"\n        amount = n\n").replace(
    '[n])\n        return {"added": n,', '[amount])\n        return {"added": amount,')
CHANGED = COUNTER.replace('"added": n,', '"added": n * 10,')
BROKEN = COUNTER.replace("class Counter(MAD):", "class Counter(MAD:")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of Counter and three gated candidates: a rewrite (same), a change (differs), a syntax error."""
    root = tmp_path_factory.mktemp("regen-screen")
    mads = root / "mads"
    mads.mkdir()
    (mads / "counter.py").write_text(COUNTER)

    async def make() -> None:
        eco = Ecosystem(Config(home=root / "record-home", mad_path=[mads], environ={"MAD_MASTER_KEY": KEY},
                               sample_interval=0, only=["counter", "rogers", "fiedler", "turing"]))
        with record_session(eco, root / "sessions", argv=["test"], command="test"):
            async with eco:
                for n in (1, 2, 3):
                    await eco.send(f"@Counter add n={n}")
        for name, text in (("rewrite", REWRITE), ("changed", CHANGED), ("broken", BROKEN)):
            candidate = root / f"{name}.py"
            candidate.write_text(text)
            await regen(RegenRequest(mad="counter", candidate=candidate, home=root / "home", mad_path=[mads],
                                     sessions=root / "sessions"))

    asyncio.run(make())
    return root


@pytest.fixture
def root(prepared: Path, tmp_path: Path) -> Path:
    """A test's own copy of the prepared folder (accepting writes the module, rejecting the report)."""
    copy = tmp_path / "root"
    shutil.copytree(prepared, copy)
    for report in (copy / "home" / "regen" / "counter").glob("*/report.json"):  # paths inside point to the copy
        report.write_text(report.read_text().replace(str(prepared), str(copy)))
    return copy


