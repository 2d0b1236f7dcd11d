"""Never silent: prose addressed to nobody goes to the default MAD; a MAD that never answers is one line, exit 1."""
from __future__ import annotations

import os
from pathlib import Path

from mads.kernel.llm.offline import HOW_TO_CONFIGURE
from tests.helpers import mad_cli

MUTE = '''
from mads.kernel import MAD


class Mute(MAD):
    """Hears everything, answers nothing."""

    async def on_message(self, message, addressed):
        return None
'''


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
            "MAD_MASTER_KEY": "7" * 64, **extra}


def test_prose_to_nobody_is_answered_by_fiedler_with_how_to_configure_a_model(tmp_path: Path) -> None:
    done = mad_cli(environment(tmp_path), "send", "hello, who are you?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("── fiedler")
    assert HOW_TO_CONFIGURE in done.stdout


def test_default_mad_chooses_who_answers_and_an_unknown_one_is_one_line(tmp_path: Path) -> None:
    done = mad_cli(environment(tmp_path), "send", "list_files", "--default-mad", "horace", "--no-record")
    assert done.returncode == 0 and done.stdout.startswith("── horace"), done.stdout + done.stderr
    missing = mad_cli(environment(tmp_path / "fresh", MAD_DEFAULT_MAD="nobody"), "send", "hello", "--no-record")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        "mad: error: mention a MAD with @Name, for example: @Dewey search query=hello "
        "(the default MAD 'nobody' is not running)"]


def test_a_mad_that_never_answers_is_one_line_and_exit_1(tmp_path: Path) -> None:
    folder = tmp_path / "mads"
    folder.mkdir()
    (folder / "mute.py").write_text(MUTE)
    done = mad_cli(environment(tmp_path, MAD_PATH=str(folder)), "send", "@Mute are you there?", "--timeout", "1",
                   "--no-record")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == ["mad: error: no reply from @mute within 1 s"]


def test_prose_to_nobody_where_mads_are_members_says_so_in_one_line_and_exits_1(tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert mad_cli(env, "send", "@Horace list_files", "--no-record").returncode == 0  # Horace joins `main`
    done = mad_cli(env, "send", "hello again", "--no-record")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "mad: error: no MAD was addressed and none answered: mention one, for example @Dewey search query=hello"]
