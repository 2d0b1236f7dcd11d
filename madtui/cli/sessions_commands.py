"""`mad sessions`: list, show, search, export and prune the recordings."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from mads.kernel.errors import UsageError
from mads.kernel.events import KINDS
from mads.kernel.journal import reader

from .options import run_sync

sessions_dir_option = click.option(
    "--sessions", "sessions_dir", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_SESSIONS",
    default="sessions", show_default=True, show_envvar=True, help="Folder of session recordings.")


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@click.group()
def sessions() -> None:
    """List, show, search, export and prune session recordings.

    \b
    Example: mad sessions show 2026 --kind message --mad dewey
    """


@sessions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@sessions_dir_option
@run_sync
def list_sessions(as_json: bool, sessions_dir: Path) -> None:
    """Every recording: id, start, duration, events, MADs, errors, size.

    \b
    Example: mad sessions list --json | jq '.[0].id'
    """
    rows = []
    for path in reader.session_files(sessions_dir):
        try:
            rows.append(reader.summarize(path))
        except Exception as exc:  # one unreadable file must not hide the others
            click.echo(f"mad: warning: skipped {path.name}: {exc}", err=True)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo(f"no recordings in {sessions_dir}")
        return
    width = max(len(r.id) for r in rows)
    click.echo(f"{'ID':<{width}} {'START':<19} {'DURATION':>9} {'EVENTS':>8} {'ERRORS':>6} {'SIZE':>9}  MADS")
    for r in rows:
        click.echo(f"{r.id:<{width}} {_when(r.started):<19} {r.duration_s:>8.1f}s {r.events:>8} {r.errors:>6} "
                   f"{_size(r.size):>9}  {','.join(r.mads)}")


def _event_line(event: dict[str, Any]) -> str:
    payload = event["payload"]
    if event["kind"] == "message":
        detail = payload.get("message", {}).get("content", "").replace("\n", " ⏎ ")
    elif event["kind"] in ("tool_call",):
        detail = f"{payload.get('tool')} {json.dumps(payload.get('arguments', {}), ensure_ascii=False)}"
    elif event["kind"] == "tool_result":
        detail = f"{payload.get('tool')} " + ("ok" if payload.get("ok") else f"error: {payload.get('error')}")
    elif event["kind"] == "log":
        detail = f"{payload.get('level')}: {payload.get('message')}"
    elif event["kind"] == "crash":
        detail = f"{payload.get('handler')}: {payload.get('error')}"
    else:
        detail = json.dumps(payload, ensure_ascii=False, default=str)
    if len(detail) > 160:
        detail = detail[:157] + "..."
    stamp = datetime.fromtimestamp(event["wall"]).strftime("%H:%M:%S.%f")[:-3]
    return f"{event['seq']:>7} {stamp} {event['kind']:<12} {event['mad'] or '-':<9} {detail}"


@sessions.command("show")
@click.argument("session_id", metavar="ID")
@click.option("--kind", multiple=True, type=click.Choice(KINDS), metavar="KIND",
              help="Only events of this kind (repeatable): message, tool_call, crash, ...")
@click.option("--mad", multiple=True, help="Only events of this MAD (repeatable).")
@click.option("--since", metavar="T", help="Only events at or after T: ISO-8601, epoch seconds, or 5m (ago).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines, one event a line.")
@sessions_dir_option
@run_sync
def show(session_id: str, kind: tuple[str, ...], mad: tuple[str, ...], since: str | None, as_json: bool,
         sessions_dir: Path) -> None:
    """The events of one recording, filtered; ID is a file path, a unique prefix of a session id, or last.

    \b
    Example: mad sessions show 20261125 --kind tool_call --kind tool_result --mad horace
    """
    path = reader.resolve(session_id, sessions_dir)
    since_epoch = reader.parse_time(since) if since else None
    for event in reader.read_events(path, kind=list(kind) or None, mad=list(mad) or None, since=since_epoch):
        click.echo(json.dumps(event, ensure_ascii=False) if as_json else _event_line(event))


@sessions.command("search")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@sessions_dir_option
@run_sync
def search(text: str, as_json: bool, sessions_dir: Path) -> None:
    """Full-text search over the messages of every recording.

    \b
    Example: mad sessions search "budget report"
    """
    hits = reader.search(sessions_dir, text)
    if as_json:
        click.echo(json.dumps(hits, indent=2, ensure_ascii=False))
        return
    for hit in hits:
        snippet = " ".join(hit["snippet"].split())
        click.echo(f"{hit['session']}  #{hit['seq']:<6} {hit['sender'] or '-':<9} {snippet}")
    if not hits:
        click.echo("no match", err=True)


@sessions.command("export")
@click.argument("session_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "pytest"]), default="jsonl", show_default=True,
              help="pytest: a test file with one test per recorded input (needs -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout.")
@click.option("--reference", is_flag=True,
              help="pytest: refer to the recording where it is instead of copying it beside the file.")
@sessions_dir_option
@run_sync
def export(session_id: str, fmt: str, output: Path | None, reference: bool, sessions_dir: Path) -> None:
    """A whole recording (meta, modules, events) as JSON Lines or one JSON object, or as a pytest file.

    The pytest file has one test per recorded input (human message or call from outside): each
    re-runs the recording against the current code (same starting state, LLM answers from the
    recording) and asserts that input's replies and tool results, naming the MAD and the first
    event that differs. The recording is copied beside it (FILE with .db) unless --reference.

    \b
    Example: mad sessions export 20261125T1200 --format json -o session.json
    Example: mad sessions export last --format pytest -o tests/test_recorded_session.py
    """
    path = reader.resolve(session_id, sessions_dir)
    if fmt == "pytest":
        if output is None:
            raise UsageError("--format pytest needs -o FILE (a .py file)")
        if output.suffix != ".py":
            raise UsageError(f"{output} is not a .py file")
        from ..testing import export_pytest

        try:
            count = export_pytest(path, output, copy=not reference)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
        beside = "" if reference else f", the recording beside it as {output.with_suffix('.db').name}"
        click.echo(f"wrote {output}: {count} test{'s' * (count != 1)}, one per recorded input{beside}")
        return
    data = reader.export(path)
    try:
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        if fmt == "json":
            stream.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        else:
            stream.write(json.dumps({"meta": data["meta"]}, ensure_ascii=False) + "\n")
            for module in data["modules"]:
                stream.write(json.dumps({"module": module}, ensure_ascii=False) + "\n")
            for event in data["events"]:
                stream.write(json.dumps(event, ensure_ascii=False) + "\n")
    finally:
        if output:
            stream.close()


@sessions.command("prune")
@click.option("--older-than", required=True, metavar="AGE", help="Age such as 30d, 12h, 90m.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@sessions_dir_option
@run_sync
def prune(older_than: str, dry_run: bool, sessions_dir: Path) -> None:
    """Delete recordings that ended longer ago than AGE.

    \b
    Example: mad sessions prune --older-than 30d
    """
    removed = reader.prune(sessions_dir, reader.parse_duration(older_than), dry_run=dry_run)
    for path in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    if not dry_run:
        click.echo(f"{len(removed)} recording(s) removed", err=True)


@sessions.command("mark")
@click.argument("session", metavar="SESSION")
@click.option("--golden", "golden", flag_value=True, default=None,
              help="Mark it golden: `mad regen` gates every MAD it involves on it.")
@click.option("--unmark", "golden", flag_value=False, help="Take the golden mark away.")
@sessions_dir_option
@run_sync
def mark(session: str, golden: bool | None, sessions_dir: Path) -> None:
    """Mark a recording golden (or not): the evidence `mad regen` re-runs first.

    \b
    Example: mad sessions mark 20261125T1200 --golden
    Example: mad sessions mark last --unmark
    """
    if golden is None:
        raise UsageError("say --golden or --unmark")
    path = reader.resolve(session, sessions_dir)
    reader.set_golden(path, golden)
    click.echo(f"{path.stem} {'marked golden' if golden else 'no longer golden'}")


@sessions.command("top")
@click.argument("session", metavar="SESSION")
@click.option("--mad", "mad", metavar="MAD", help="Only the messages this MAD handled.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="How many to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@sessions_dir_option
@run_sync
def top(session: str, mad: str | None, limit: int, as_json: bool, sessions_dir: Path) -> None:
    """The costliest messages of a recording: MAD, conversation, CPU, wall time, first line.

    Each message a MAD handled is recorded with the CPU its handler spent on it (`handled`
    events, `cpu_ms`); tool calls from outside are listed by tool.

    \b
    Example: mad sessions top last --limit 5
    Example: mad sessions top 2026 --mad horace --json
    """
    path = reader.resolve(session, sessions_dir)
    rows = []
    for event in reader.read_events(path, kind=["handled"]):
        if mad is not None and event["mad"] != mad.lower().lstrip("@"):
            continue
        p = event["payload"]
        rows.append({"seq": event["seq"], "mad": event["mad"], "conversation": event["conversation"],
                     "cpu_ms": p.get("cpu_ms", 0.0), "wall_ms": p.get("wall_ms", 0.0),
                     "message_id": p.get("message_id"), "sender": p.get("sender"), "tool": p.get("tool"),
                     "head": p.get("head") or (f"tool call {p['tool']}" if p.get("tool") else "")})
    rows.sort(key=lambda r: (-r["cpu_ms"], r["seq"]))
    rows = rows[:limit]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no handled message recorded in {path.stem}", err=True)
        return
    click.echo(f"{'cpu ms':>9} {'wall ms':>9}  {'MAD':<10} {'conversation':<14} first line")
    for r in rows:
        conversation = (r["conversation"] or "-")[:14]
        click.echo(f"{r['cpu_ms']:>9.1f} {r['wall_ms']:>9.1f}  {r['mad']:<10} {conversation:<14} {r['head']}")
