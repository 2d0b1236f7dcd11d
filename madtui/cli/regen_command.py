"""`mad regen`: gate a new version of a MAD on recorded behaviour, report the behaviour diff, apply it or roll back."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mads.kernel import UsageError
from mads.kernel.events import Regen

from .options import ecosystem_options, gather, run_async


@click.command()
@click.argument("mad", required=False, metavar="MAD")
@click.argument("instruction", required=False, default="", metavar="INSTRUCTION")
@click.option("--candidate", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Gate this module file (written by hand, by aider, by another agent) instead of generating one.")
@click.option("--against", multiple=True, metavar="ID",
              help="Re-run these recordings (repeatable; default: the golden ones of the MAD, else its last 5).")
@click.option("--apply", "apply_", is_flag=True, help="Write the module (atomically) when the gate passes.")
@click.option("--accept-changes", is_flag=True, help="With --apply: write it even when behaviour differs.")
@click.option("--allow-interface-change", is_flag=True, help="Let a candidate remove tools or change their schemas.")
@click.option("--attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Generations to try: a static failure goes back to the model with its error.")
@click.option("--rollback", "rollback_mad", metavar="MAD", help="Restore the version the last --apply replaced.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@ecosystem_options(timeout=False)
def regen(mad: str | None, instruction: str, candidate: Path | None, against: tuple[str, ...], apply_: bool,
          accept_changes: bool, allow_interface_change: bool, attempts: int, rollback_mad: str | None,
          as_json: bool, **shared: Any) -> None:
    """Regenerate a MAD's module, gate it on recorded behaviour, and show what changed.

    Without --candidate, Fiedler asks the configured model for the whole new module (its source,
    the authoring guide, its tool schemas, the INSTRUCTION and a few recorded exchanges). The
    static gate loads the candidate in a child process: it compiles, imports, defines the MAD,
    keeps its tools (unless --allow-interface-change), migrates a copy of the state and passes
    its self_check. The behavioural gate re-runs recordings against the current code twice
    (to learn the noise: timestamps, random ids) and against the candidate, in parallel, LLM
    answers served from the recordings. Candidates and reports are kept in
    MAD_HOME/regen/<mad>/<n>/. Exit 0: the gate passed and behaviour is the same; 1: a gate
    failed or behaviour differs; 2: a usage error. Nothing is written without --apply.

    \b
    Example: mad regen horace "keep a sha256 of each version" --apply
    Example: mad regen notes --candidate ./notes_v2.py --against last --json
    Example: mad regen --rollback horace
    """
    from madtui.regen import RegenRequest, regen as run_regen, rollback
    from madtui.regen.report import render

    options = gather(shared)
    if rollback_mad is not None and (mad or candidate or apply_):
        raise click.UsageError("--rollback MAD takes no other MAD, candidate or --apply")
    if rollback_mad is None and not mad:
        raise click.UsageError("name the MAD to regenerate (or --rollback MAD)")
    if accept_changes and not apply_:
        raise click.UsageError("--accept-changes only goes with --apply")

    async def body(**_: Any) -> None:
        from mads.kernel import Config, Ecosystem
        from .options import setup_logging

        generating = rollback_mad is None and candidate is None
        eco = Ecosystem(Config(home=options.home, mad_path=list(options.mad_path), provider=options.provider,
                               only=["fiedler", "turing"] if generating else [], sample_interval=0))
        setup_logging(options.debug, eco)
        if generating:
            eco.load()
            if "fiedler" not in eco.runners:
                raise UsageError("generating a module needs Fiedler (or pass --candidate FILE)")
        target = (rollback_mad or mad or "").lower().lstrip("@")

        def emit(step: str, ok: bool, detail: dict[str, Any]) -> None:
            eco.hub.emit(Regen(mad=target, step=step, ok=ok, detail=detail))

        with options.record(eco, "regen"):
            async with eco:
                if rollback_mad is not None:
                    restored = rollback(rollback_mad, options.home)
                    emit("rollback", True, restored)
                    if as_json:
                        click.echo(json.dumps(restored, indent=2))
                    else:
                        click.echo(f"restored {restored['path']} ({restored['restored_sha256'][:12]}); "
                                   f"a running ecosystem reloads it")
                    return
                request = RegenRequest(
                    mad=target, instruction=instruction, candidate=candidate, against=list(against), apply=apply_,
                    accept_changes=accept_changes, allow_interface_change=allow_interface_change, attempts=attempts,
                    home=options.home, mad_path=list(options.mad_path), sessions=options.sessions)
                report = await run_regen(request, llm=eco.services.get("llm") if generating else None, emit=emit,
                                         progress=_progress_json if as_json else _progress)
        click.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str) if as_json else render(report))
        sys.exit(report["exit"])

    run_async(body)(debug=options.debug)


def _terminal() -> Any:
    """The process's own stderr: while the session is recorded, sys.stderr writes become log events."""
    return sys.__stderr__


def _progress_json(update: dict[str, Any]) -> None:
    """With --json, progress goes to stderr as one JSON object a line (the workbench's Regen screen reads it)."""
    click.echo(json.dumps({"progress": update}), file=_terminal())


def _progress(update: dict[str, Any]) -> None:
    if update["step"] == "generating":
        click.echo(f"generating (attempt {update['attempt']} of {update['of']})", file=_terminal())
    elif update["step"] == "static":
        click.echo("static gate", file=_terminal())
    elif update["step"] == "behaviour" and update["done"] == 0:
        click.echo(f"re-running {update['of']} recording{'s' * (update['of'] != 1)}", file=_terminal())
