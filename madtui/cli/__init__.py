"""The `mad` command line: a thin layer over the kernel's API."""
from __future__ import annotations

import click

from madtui import __version__

from .ecosystem_commands import call, run, send, tools
from .mcp_command import mcp
from .replay_command import replay
from .rerun_commands import rerun
from .sessions_commands import sessions
from .tui_command import tui


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
cli.add_command(replay)
cli.add_command(rerun)
cli.add_command(sessions)
cli.add_command(tui)


def main() -> None:
    cli(prog_name="mad")
