"""docs/cli.md is every command's `--help` as the code has it now, and says how to write it again when not."""
from __future__ import annotations

import pytest

from madtui.cli import cli, reference
from tests.helpers import ROOT

PAGE = ROOT / "docs" / "cli.md"
REGENERATE = "python -m madtui.cli.reference > docs/cli.md"


def paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under the `mad` group, found by walking it."""
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += paths(sub, (*path, name))
    return found


def test_docs_cli_md_is_the_help_of_every_command_as_it_is_now() -> None:
    assert reference.PAGE == PAGE
    assert reference.stale() is None, reference.stale()
    page = PAGE.read_text(encoding="utf-8")
    for path in paths(cli):
        assert f"\n## {' '.join(('mad', *path))}\n" in page, path


def test_a_changed_help_makes_the_page_stale_and_the_check_names_the_command(monkeypatch, capsys) -> None:
    assert reference.main(["--check"]) == 0
    monkeypatch.setattr(cli.commands["sessions"].commands["prune"], "help", "Delete old recordings.\n\nExample: mad sessions prune --older-than 1d")
    assert reference.stale() == f"docs/cli.md is stale: run `{REGENERATE}`"
    capsys.readouterr()
    assert reference.main(["--check"]) == 1
    assert capsys.readouterr().err == f"docs/cli.md is stale: run `{REGENERATE}`\n"


@pytest.mark.parametrize("width", [40, 200])
def test_the_page_does_not_depend_on_the_terminal(monkeypatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    assert reference.render() == PAGE.read_text(encoding="utf-8")
