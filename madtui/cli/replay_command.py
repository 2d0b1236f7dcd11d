"""`mad replay`: the workbench over a recording, moved by one time cursor."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from mads.kernel.journal import reader

from .options import run_sync
from .sessions_commands import sessions_dir_option


@click.command()
@click.argument("session", metavar="[SESSION]", default=reader.LAST)
@click.option("--at", "at", type=click.IntRange(min=1), metavar="EVENT", help="Start with the cursor at this event.")
@sessions_dir_option
@run_sync
def replay(session: str, at: int | None, sessions_dir: Path) -> None:
    """Replay a recording: every MAD's pane and resource graph at one time cursor.

    SESSION is a journal file, a unique prefix of a session id, or `last` (the newest, and
    the default). Space plays and pauses,
    . and , step one event, < and > one second, + and - change the speed (1x, 10x, 100x,
    max), e and E jump to the next and previous error (c crashes, r reloads), g goes to a
    time, +seconds or #event; F1 lists every key.

    \b
    Example: mad replay 20261125T1200
    Example: mad replay last --at 1200
    """
    from ..replay import ReplayCursor
    from ..replay_app import ReplayApp

    path = reader.resolve(session, sessions_dir)
    cursor = ReplayCursor(path)  # an unusable file is one line and exit 2, before the screen is taken
    try:
        code = ReplayApp(path, cursor=cursor, start_at=at).run()
    finally:
        cursor.close()
    sys.exit(code or 0)
