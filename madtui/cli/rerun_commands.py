"""`mad rerun` and `mad sessions diff`: what a change of code did to behaviour, with an exit code for CI."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from mads.kernel.journal import reader

from ..diff import compare, render
from .options import PathList, isolate_option, names_of, run_sync
from .sessions_commands import sessions, sessions_dir_option


def _finish(report: dict[str, Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**report, **(extra or {})}, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(render(report))
    sys.exit(0 if report["same"] else 1)


@click.command()
@click.argument("session", metavar="SESSION")
@click.option("--mad-path", "mad_path", type=PathList(file_okay=False, path_type=Path), multiple=True,
              help="Folder of MAD modules to re-run against (default: the recording's own MAD_PATH).")
@click.option("--module", "modules", type=click.Path(dir_okay=False, exists=True, path_type=Path), multiple=True,
              help="A module file re-run in place of the module that defines the same MADs (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--live-llm", is_flag=True, help="Ask the recording's model when a prompt no longer matches.")
@isolate_option
@sessions_dir_option
@run_sync
def rerun(session: str, mad_path: tuple[Path, ...], modules: tuple[Path, ...], as_json: bool, live_llm: bool, isolate: tuple[str, ...],
          sessions_dir: Path) -> None:
    """Re-run a recording against the current code and report, per MAD, where behaviour first differs.

    The recording's inputs are fed in order to a fresh ecosystem started from the recording's
    state; LLM answers come from the recording. The re-run is recorded too. Exit 0 when every
    MAD behaves the same, 1 when any differs, 2 when the recording is unusable. SESSION is a
    journal file, a unique prefix of a session id, or `last` (the newest recording).

    \b
    Example: mad rerun 20261125T1200 --mad-path ./my_mads --json
    Example: mad rerun last --module ./candidate_horace.py
    """
    from ..rerun import rerun as run_again

    path = reader.resolve(session, sessions_dir)
    result = asyncio.run(run_again(path, sessions=sessions_dir, mad_path=list(mad_path) or None, live_llm=live_llm,
                                   isolate=list(names_of(isolate)) or None, replace=list(modules)))
    if not as_json:
        inputs = f"{result.inputs} input{'s' * (result.inputs != 1)}"
        click.echo(f"re-ran {inputs} of {path.stem}; recorded as {result.journal.stem}", err=True)
    _finish(result.report, as_json, {"rerun": {"journal": str(result.journal), "inputs": result.inputs,
                                               "llm_prompt_mismatches": result.llm_mismatches,
                                               "llm_unrecorded": result.llm_unrecorded}})


@sessions.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@sessions_dir_option
@run_sync
def diff(a: str, b: str, as_json: bool, sessions_dir: Path) -> None:
    """Compare the behaviour of two recordings, MAD by MAD (exit 0 same, 1 differs, 2 unusable).

    \b
    Example: mad sessions diff 20261125T1200 20261125T1300
    """
    _finish(compare(reader.resolve(a, sessions_dir), reader.resolve(b, sessions_dir)), as_json)
