"""The `mad` command line: a thin layer over the kernel's API."""
from __future__ import annotations

import sys
from typing import Any

import click

from madtui import __version__

from .ecosystem_commands import call, record, run, send, tools
from .lppm_command import lppm
from .mcp_command import mcp
from .regen_command import regen
from .replay_command import replay
from .rerun_commands import rerun
from .sessions_commands import sessions
from .tui_command import tui


class MadGroup(click.Group):
    """click's group, whose own usage errors (an unknown option, a missing argument) are one line too."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        prog_name = prog_name or "mad"
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else prog_name
            click.echo(f"mad: error: {exc.format_message().rstrip('.')} (see {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"mad: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(name="mad", cls=MadGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mad")
def cli() -> None:
    """mad: a workbench for an ecosystem of MADs running in one Python process.

    Example: mad send "@Dewey search query=budget"
    """


cli.add_command(tools)
cli.add_command(call)
cli.add_command(send)
cli.add_command(run)
cli.add_command(mcp)
cli.add_command(record)
cli.add_command(replay)
cli.add_command(rerun)
cli.add_command(regen)
cli.add_command(lppm)
cli.add_command(sessions)
cli.add_command(tui)


def main() -> None:
    cli(prog_name="mad")
