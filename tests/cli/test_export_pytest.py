"""A recording as a pytest file: it passes on unchanged code and fails after a change, naming the MAD and event."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from madtui.cli import cli
from tests.cli.rerun_session import NOTES, record


def pytest_run(folder: Path, file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(file)], cwd=folder,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MAD_MASTER_KEY": "a" * 64})


def test_the_exported_file_passes_on_unchanged_code_and_names_the_mad_and_event_after_a_change(
        tmp_path: Path) -> None:
    journal = record(tmp_path / "recorded")
    out = tmp_path / "exported"
    out.mkdir()
    file = out / "test_notes_session.py"
    done = CliRunner().invoke(cli, ["sessions", "export", str(journal), "--format", "pytest", "-o", str(file)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f"wrote {file}: 12 tests, one per recorded input, the recording beside it as " \
                                  f"test_notes_session.db"
    source = file.read_text()
    assert 'RECORDING = Path(__file__).with_name("test_notes_session.db")' in source
    assert "def test_002_human_notes_please_remember_milk(rerun):" in source
    assert '"""#3 mcp-stdio calls notes_remember {"item": "bread"}"""' in source
    passed = pytest_run(out, file)
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert "12 passed" in passed.stdout

    module = tmp_path / "recorded" / "mads" / "notes.py"  # the recording's own MAD_PATH
    module.write_text(NOTES.replace('return {"remembered": text, "count": count}',
                                    'return {"remembered": text.upper(), "count": count}'))
    failed = pytest_run(out, file)
    assert failed.returncode == 1
    assert "FAILED test_notes_session.py::test_003_mcp_stdio_calls_notes_remember_item_bread" in failed.stdout
    assert "input #3 (mcp-stdio calls notes_remember {\"item\": \"bread\"}): notes differs at its event" in failed.stdout
    assert '"remembered": "BREAD"' in failed.stdout and "test_001_" not in failed.stdout.split("short test summary")[1]


def test_export_pytest_needs_a_py_file(tmp_path: Path) -> None:
    journal = tmp_path / "none.db"
    done = CliRunner().invoke(cli, ["sessions", "export", "last", "--format", "pytest", "--sessions", str(tmp_path)])
    assert done.exit_code == 2 and "no recordings" in done.stderr
    del journal
