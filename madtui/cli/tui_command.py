"""`mad tui`: the workbench over a live ecosystem."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .options import PathList, bus_options, isolate_option, names_of, provider_option


def folder_problem(folder: Path) -> str | None:
    """Why the folder could not be used (or made) for writing, found without creating anything; None if it can."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return "Not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "Permission denied"
    return None


def check_bus(bus: str | None, ecosystem: str) -> None:
    """A bad --bus is a usage error (exit 2), an unreachable Redis one line (exit 1), before the screen is taken."""
    from mads.kernel import UsageError
    from mads.kernel.distributed import parse_bus

    try:
        address = parse_bus(bus, ecosystem)
    except UsageError as exc:
        raise click.UsageError(str(exc).removeprefix("--bus: ")) from None
    if address is None:
        return
    import redis

    client = redis.Redis.from_url(address.url, socket_connect_timeout=3)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"mad: error: cannot reach Redis at {address.shown}: {reason}", err=True)
        sys.exit(1)
    finally:
        client.close()


@click.command()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_HOME", default=".mad",
              show_default=True, show_envvar=True, help="Folder of all MAD state.")
@click.option("--sessions", type=click.Path(file_okay=False, path_type=Path), envvar="MAD_SESSIONS",
              default="sessions", show_default=True, show_envvar=True, help="Folder of session recordings.")
@click.option("--mad-path", "mad_path", type=PathList(file_okay=False, path_type=Path), multiple=True,
              envvar="MAD_PATH", show_envvar=True, help="Extra folder of MAD modules (repeatable).")
@provider_option
@isolate_option
@bus_options[0]
@bus_options[1]
@bus_options[2]
@click.option("--default-mad", "default_mad", envvar="MAD_DEFAULT_MAD", default="fiedler", show_default=True,
              show_envvar=True, help="Who answers prose addressed to nobody in a conversation with no MAD in it.")
def tui(home: Path, sessions: Path, mad_path: tuple[Path, ...], provider: str, isolate: tuple[str, ...],
        bus: str | None, mads: tuple[str, ...], ecosystem_name: str, default_mad: str, **_: Any) -> None:
    """The workbench: every MAD side by side, its conversation and resource use; keyboard-driven.

    The ecosystem runs as a child process (`mad mcp`) recorded into one session journal.
    Keys: ctrl+t calls any tool through a form, F2 shows resource use, F8 the recordings
    (replay, re-run), F1 lists every key, ctrl+q quits.

    \b
    Example: mad tui --provider scripted --mad-path ./my_mads
    """
    from madtui.app import MadApp
    from madtui.host import HostOptions

    check_bus(bus, ecosystem_name)
    for folder in mad_path:  # said before the screen is taken, not as a child that keeps failing
        if not folder.is_dir():
            raise click.UsageError(f"MAD_PATH folder not found: {folder}")
    for name, folder in (("--home", home), ("--sessions", sessions)):
        problem = folder_problem(folder)
        if problem:
            raise click.UsageError(f"cannot use {folder} as {name}: {problem}")
    try:  # the workbench makes it at once anyway; some folders only refuse when asked (/proc)
        sessions.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"cannot use {sessions} as --sessions: {exc.strerror or exc}") from None

    options = HostOptions(home=home.resolve(), sessions=sessions.resolve(),
                          mad_path=[p.resolve() for p in mad_path], provider=provider, isolate=list(names_of(isolate)),
                          bus=bus, mads=list(names_of(mads)), ecosystem=ecosystem_name,
                          environ={**os.environ, "MAD_DEFAULT_MAD": default_mad.lower().lstrip("@")})
    code = MadApp(options).run()
    sys.exit(code or 0)
