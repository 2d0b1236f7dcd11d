"""`mad lppm`: the prose templates each MAD has learned (LPPM), listed or forgotten."""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from mads.kernel.cognition.lppm import TABLE
from mads.kernel.errors import UsageError

from .options import run_sync

home_option = click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_HOME",
                           default=".mad", show_default=True, show_envvar=True, help="Folder of all MAD state.")
min_support_option = click.option("--lppm-min-support", "min_support", type=click.IntRange(min=1),
                                  envvar="MAD_LPPM_MIN_SUPPORT", default=2, show_default=True, show_envvar=True,
                                  help="Agreeing resolutions before a template serves.")


def _databases(home: Path, mad: str | None) -> list[tuple[str, Path]]:
    state = home / "state"
    if not state.is_dir():
        return []
    found = []
    for folder in sorted(p for p in state.iterdir() if p.is_dir()):
        if mad is not None and folder.name != mad:
            continue
        path = folder / f"{folder.name}.db"
        if path.is_file():
            found.append((folder.name, path))
    return found


def _rows(path: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(
                f"SELECT id, template, plan, support, served, failures, created, updated FROM {TABLE} ORDER BY created")]
        except sqlite3.OperationalError:  # no template learned yet
            return []


@click.group()
def lppm() -> None:
    """The prose templates LPPM learned from the Imperator: list them, forget them.

    \b
    Example: mad lppm list --mad horace
    """


@lppm.command("list")
@click.option("--mad", "mad", metavar="MAD", help="Only this MAD's templates.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@home_option
@min_support_option
@run_sync
def list_templates(mad: str | None, as_json: bool, home: Path, min_support: int) -> None:
    """Every learned template: its MAD, text, plan, support, and whether it serves or is in shadow.

    \b
    Example: mad lppm list --json | jq '.[] | select(.serving)'
    """
    found = []
    for name, path in _databases(home, mad.lower() if mad else None):
        for row in _rows(path):
            found.append({"mad": name, **row, "plan": json.loads(row["plan"]),
                          "serving": row["support"] >= min_support})
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no template learned yet: prose the Imperator resolves with tool calls is learned", err=True)
        return
    for entry in found:
        state = "serving" if entry["serving"] else "shadow "
        tools = ", ".join(step["tool"] for step in entry["plan"])
        click.echo(f"{entry['id']}  {entry['mad']:<8} {state} support {entry['support']} served {entry['served']} "
                   f"failed {entry['failures']}  {entry['template']}  -> {tools}")


@lppm.command("forget")
@click.argument("template_id", required=False, metavar="ID")
@click.option("--mad", "mad", metavar="MAD", help="Forget every template of this MAD.")
@home_option
@run_sync
def forget(template_id: str | None, mad: str | None, home: Path) -> None:
    """Forget one template (by its id) or all of a MAD's; a running ecosystem stops serving them at once.

    \b
    Example: mad lppm forget 3f2a9c1d0b7e
    Example: mad lppm forget --mad horace
    """
    if (template_id is None) == (mad is None):
        raise UsageError("give a template ID or --mad MAD")
    removed = 0
    for _, path in _databases(home, mad.lower() if mad else None):
        with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
            try:
                if template_id is not None:
                    removed += conn.execute(f"DELETE FROM {TABLE} WHERE id = ?", [template_id]).rowcount
                else:
                    removed += conn.execute(f"DELETE FROM {TABLE}").rowcount
            except sqlite3.OperationalError:
                continue
    if template_id is not None and not removed:
        raise UsageError(f"no template {template_id!r} (mad lppm list shows them)")
    click.echo(f"forgot {removed} template{'s' * (removed != 1)}")
