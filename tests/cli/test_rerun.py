"""`mad rerun` and `mad sessions diff` on a real `mad mcp` recording: same code same behaviour, a change named."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from madtui.cli import cli
from madtui.rerun import IdMap, external_inputs
from mads.kernel.journal import reader
from tests.cli.rerun_session import KEY, NOTES_REWRITTEN, changed, idle_recording, record

SESSION_MADS = {"dewey", "horace", "notes", "rogers"}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("first"))


@pytest.fixture(scope="module")
def second_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("second"))


@dataclass
class Outcome:
    """What one `mad` command answered."""

    code: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)


Mad = Callable[..., Outcome]


@pytest.fixture
def mad(tmp_path: Path) -> Mad:
    """Run `mad ...` in-process; re-runs are recorded into tmp_path/sessions."""
    runner = CliRunner()
    env = {"MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"), "MAD_MASTER_KEY": KEY}

    def invoke(*args: str) -> Outcome:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return invoke


def mad_folder(root: Path, source: str) -> Path:
    folder = root / "changed"
    folder.mkdir()
    (folder / "notes.py").write_text(source)
    return folder


def test_the_recording_holds_every_kind_of_input_and_crosses_several_mads(recording: Path) -> None:
    inputs = external_inputs(recording)
    assert [(i.kind, i.tool or i.content) for i in inputs] == [
        ("send", "@Horace write_file path=a.txt content=hello"), ("send", "@Notes please remember milk"),
        ("call", "notes_remember"), ("send", "@Notes what do you remember?"), ("call", "notes_recall"),
        ("call", "rogers_create_conversation"), ("send", "@Notes recall"), ("call", "horace_read_file"),
        ("send", "@Dewey search query=hello"), ("send", "@Dewey search query=milk"), ("call", "rogers_get_messages"),
        ("call", "fiedler_list_models")]
    calls = {e["seq"]: e["payload"]["tool"] for e in reader.read_events(recording, kind=["tool_call"])}
    for item in inputs:
        if item.kind == "call":  # the gateway records an external call after it ran: its effects start earlier
            assert item.start < item.seq and calls[item.start] == item.tool
    llm = list(reader.read_events(recording, kind=["llm_result"]))
    assert [e["payload"]["caller"] for e in llm] == ["notes"] * 4


def test_an_unchanged_session_reruns_the_same_ten_times_out_of_ten(recording: Path, mad: Mad) -> None:
    for _ in range(10):
        done = mad("rerun", str(recording), "--json")
        report = done.report()
        assert done.code == 0, json.dumps(report["mads"], indent=1)[:4000]
        assert report["same"] is True and report["diverged"] == []
        assert SESSION_MADS <= set(report["mads"])
        assert all(r["same"] and r["events"][0] == r["events"][1] > 0 for r in report["mads"].values())
        assert report["rerun"]["inputs"] == 12 and report["rerun"]["llm_prompt_mismatches"] == 0


def test_the_json_report_has_its_documented_shape_and_the_rerun_is_recorded(recording: Path, mad: Mad,
                                                                             tmp_path: Path) -> None:
    report = mad("rerun", str(recording), "--json").report()
    assert set(report) == {"same", "diverged", "a", "b", "mads", "rerun"}
    assert report["a"] == {"session": recording.stem, "path": str(recording)}
    new = Path(report["rerun"]["journal"])
    assert new.parent == tmp_path / "sessions" and report["b"] == {"session": new.stem, "path": str(new)}
    assert set(report["rerun"]) == {"journal", "inputs", "llm_prompt_mismatches", "llm_unrecorded"}
    for entry in report["mads"].values():
        assert set(entry) == {"same", "events", "code", "first_divergence"}
        assert set(entry["code"]) == {"a", "b", "changed"} and entry["first_divergence"] is None
    assert report["mads"]["notes"]["code"]["changed"] is False and len(report["mads"]["notes"]["code"]["a"]) == 64
    meta = reader.read_meta(new)
    assert meta["command"] == "rerun" and meta["rerun_of"] == recording.stem


def test_a_changed_tool_result_fails_the_rerun_naming_only_that_mad_and_its_first_diverging_event(
        recording: Path, mad: Mad, tmp_path: Path) -> None:
    folder = mad_folder(tmp_path, changed('return {"remembered": text, "count": count}',
                                          'return {"remembered": text, "count": count, "length": len(text)}'))
    done = mad("rerun", str(recording), "--mad-path", str(folder), "--json")
    report = done.report()
    assert done.code == 1 and report["same"] is False
    assert report["diverged"] == ["notes"]  # the answers that reach other MADs are the recorded LLM's text
    notes = report["mads"]["notes"]
    assert notes["code"]["changed"] is True
    assert all(not r["code"]["changed"] for m, r in report["mads"].items() if m != "notes")
    first = notes["first_divergence"]
    assert first["index"] == 3 and first["expected"]["kind"] == first["got"]["kind"] == "tool_result"
    assert first["expected"]["result"] == {"remembered": "milk", "count": 1}
    assert first["got"]["result"] == {"remembered": "milk", "count": 1, "length": 4}
    (event,) = reader.read_events(recording, after_seq=first["seq_a"] - 1, limit=1)
    assert (event["kind"], event["mad"], event["payload"]["tool"]) == ("tool_result", "notes", "notes_remember")
    assert report["rerun"]["llm_prompt_mismatches"] == 1  # the Imperator saw the new result; served the old answer

    text = mad("rerun", str(recording), "--mad-path", str(folder))
    assert text.code == 1 and "re-ran 12 inputs" in text.stderr
    lines = text.stdout.splitlines()
    assert any(line.split()[:4] == ["notes", "DIFFERS", "at", "its"] for line in lines)
    assert lines[-1] == "behaviour differs: notes"
    assert sum("DIFFERS" in line for line in lines) == 1


def test_a_change_that_reaches_other_mads_through_messages_names_them_too(recording: Path, mad: Mad,
                                                                         tmp_path: Path) -> None:
    folder = mad_folder(tmp_path, changed('ORDER BY id")', 'ORDER BY id DESC")'))
    done = mad("rerun", str(recording), "--mad-path", str(folder), "--json")
    report = done.report()
    assert done.code == 1
    # `@Notes recall` answers with the list itself: Rogers keeps that message and Dewey finds it for "milk"
    assert report["diverged"] == ["dewey", "notes", "rogers"]
    assert report["mads"]["horace"]["same"] and report["mads"]["horace"]["events"][0] > 0
    notes = report["mads"]["notes"]["first_divergence"]
    assert (notes["expected"]["tool"], notes["expected"]["result"], notes["got"]["result"]) == (
        "notes_recall", ["milk", "bread"], ["bread", "milk"])
    dewey = report["mads"]["dewey"]["first_divergence"]
    assert dewey["expected"]["tool"] == "dewey_search" and dewey["expected"]["result"]["query"] == "milk"
    rogers = report["mads"]["rogers"]["first_divergence"]
    assert rogers["expected"]["tool"] == "rogers_get_messages"
    assert not report["mads"]["dewey"]["code"]["changed"] and not report["mads"]["rogers"]["code"]["changed"]


def test_a_behaviour_preserving_rewrite_reruns_the_same(recording: Path, mad: Mad, tmp_path: Path) -> None:
    folder = mad_folder(tmp_path, NOTES_REWRITTEN)
    done = mad("rerun", str(recording), "--mad-path", str(folder), "--json")
    report = done.report()
    assert done.code == 0, json.dumps(report["mads"]["notes"], indent=1)
    assert report["mads"]["notes"]["code"]["changed"] is True and report["mads"]["notes"]["same"] is True
    assert report["rerun"]["llm_prompt_mismatches"] == 0


def test_sessions_diff_of_two_recordings_of_the_same_script_is_the_same(recording: Path, second_recording: Path,
                                                                        mad: Mad) -> None:
    done = mad("sessions", "diff", str(recording), str(second_recording), "--json")
    report = done.report()
    assert done.code == 0, json.dumps(report["mads"], indent=1)[:4000]
    assert report["diverged"] == [] and SESSION_MADS <= set(report["mads"])
    text = mad("sessions", "diff", str(recording), str(second_recording))
    assert text.code == 0 and text.stdout.splitlines()[-1] == "same behaviour"


def test_sessions_diff_of_a_recording_and_its_changed_rerun_reports_what_rerun_reported(
        recording: Path, mad: Mad, tmp_path: Path) -> None:
    folder = mad_folder(tmp_path, changed('ORDER BY id")', 'ORDER BY id DESC")'))
    rerun = mad("rerun", str(recording), "--mad-path", str(folder), "--json").report()
    new = rerun.pop("rerun")["journal"]
    done = mad("sessions", "diff", str(recording), new, "--json")
    assert done.code == 1
    assert done.report() == rerun
    by_id = mad("sessions", "diff", str(recording), Path(new).stem[:22], "--json")
    assert by_id.code == 1 and by_id.report()["mads"] == rerun["mads"]


def test_ids_of_the_starting_state_stand_for_themselves_and_new_ones_pair_in_order() -> None:
    old, made_a, made_b = "01KAAAAAAAAAAAAAAAAAAAAAAA", "01KBBBBBBBBBBBBBBBBBBBBBBB", "01KCCCCCCCCCCCCCCCCCCCCCCC"
    again_a, again_b = "01KDDDDDDDDDDDDDDDDDDDDDDD", "01KEEEEEEEEEEEEEEEEEEEEEEE"
    ids = IdMap()
    ids.learn([made_a, old, made_b], [old, again_a, again_b])  # a search lists an old message first this time
    assert ids.map == {old: old, made_a: again_a, made_b: again_b}
    assert ids.apply({"conversation_id": made_b, "text": f"see {made_a} and {old}"}) == {
        "conversation_id": again_b, "text": f"see {again_a} and {old}"}


@pytest.mark.parametrize("case", ["not sqlite", "sqlite without events", "unknown id", "no external inputs",
                                  "missing MAD folder"])
def test_an_unusable_recording_exits_2_with_one_line(case: str, recording: Path, mad: Mad, tmp_path: Path) -> None:
    target, extra = str(tmp_path / "other.db"), []
    if case == "not sqlite":
        Path(target).write_text("not a database")
    elif case == "sqlite without events":
        with sqlite3.connect(target) as db:
            db.execute("CREATE TABLE t (x)")
    elif case == "unknown id":
        target = "19990101T000000"
    elif case == "no external inputs":
        target = str(idle_recording(tmp_path))
    else:
        target, extra = str(recording), ["--mad-path", str(tmp_path / "gone")]
    done = mad("rerun", target, *extra)
    assert done.code == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("mad: error: ")
    if case in ("not sqlite", "sqlite without events", "unknown id"):
        diff = mad("sessions", "diff", target, str(recording))
        assert diff.code == 2 and len(diff.stderr.strip().splitlines()) == 1
