"""`mad sessions`: list, show, search, export and prune real recordings left by `mad send` and `mad call`."""
from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from madtui.cli import cli

Invoke = Callable[..., tuple[int, str, str]]
CORE_MADS = {"rogers", "fiedler", "turing", "dewey", "horace", "hopper"}
SEND_TEXT = "@Horace write_file path=a.txt content=hello"


def make_invoke(root: Path) -> Invoke:
    """Run `mad ...` in-process with MAD_HOME and MAD_SESSIONS under root; returns (exit code, stdout, stderr)."""
    runner = CliRunner()
    env = {"MAD_HOME": str(root / "home"), "MAD_MASTER_KEY": base64.b64encode(b"k" * 32).decode(),
           "MAD_PROVIDER": "offline", "MAD_PATH": "", "MAD_SESSIONS": str(root / "sessions")}

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def record(mad: Invoke, sessions: Path, *args: str, expect: int = 0) -> str:
    """Run one command that starts an ecosystem; the id of the one new journal it left."""
    before = set(sessions.glob("*.db"))
    code, _, err = mad(*args)
    assert code == expect, err
    (new,) = set(sessions.glob("*.db")) - before
    return new.stem


@dataclass
class Recorded:
    """Four real recordings in one sessions folder, named by what made them, in the order they were made."""

    mad: Invoke
    sessions: Path
    ids: dict[str, str]

    def export(self, name: str) -> dict[str, Any]:
        code, out, err = self.mad("sessions", "export", self.ids[name], "--format", "json")
        assert code == 0, err
        return json.loads(out)

    def show(self, name: str, *options: str) -> list[dict[str, Any]]:
        code, out, err = self.mad("sessions", "show", self.ids[name], "--json", *options)
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """A send, a call, a failing call and a send whose reply quotes the file: read-only for the tests."""
    root = tmp_path_factory.mktemp("recorded")
    mad, sessions = make_invoke(root), root / "sessions"
    ids = {"send": record(mad, sessions, "send", SEND_TEXT)}
    ids["read"] = record(mad, sessions, "call", "horace_read_file", "path=a.txt")
    ids["missing"] = record(mad, sessions, "call", "horace_read_file", "path=missing.txt", expect=1)
    ids["reply"] = record(mad, sessions, "send", "@Horace read_file path=a.txt")
    return Recorded(mad, sessions, ids)


@pytest.fixture
def mad(tmp_path: Path) -> Invoke:
    """`mad ...` in a fresh tmp_path, for tests that make or change recordings of their own."""
    return make_invoke(tmp_path)


def age(path: Path, days: float) -> None:
    """Move every event's wall time and the meta 'started' of a recording that many days into the past."""
    shift = days * 86400
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("UPDATE events SET wall = wall - ?", (shift,))
            (started,) = conn.execute("SELECT value FROM meta WHERE key = 'started'").fetchone()
            conn.execute("UPDATE meta SET value = ? WHERE key = 'started'", (json.dumps(json.loads(started) - shift),))
    finally:
        conn.close()


def assert_one_error_line(code: int, out: str, err: str, expected: str = "") -> None:
    assert code == 2 and out == ""
    assert err.startswith("mad: error: " + expected) and err.count("\n") == 1, err


# the journal of a run ---------------------------------------------------------


def test_a_send_session_holds_start_input_both_messages_tool_call_and_result_and_end(recorded: Recorded) -> None:
    data = recorded.export("send")
    events = data["events"]
    kinds = [e["kind"] for e in events]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    assert kinds.count("session_start") == kinds.count("session_end") == 1
    assert events[0]["payload"]["session_id"] == recorded.ids["send"] == data["meta"]["session_id"]
    assert data["meta"]["command"] == events[0]["payload"]["command"] == "send"
    (human_input,) = [e for e in events if e["kind"] == "human_input"]
    assert human_input["mad"] == "human" and human_input["payload"]["content"] == SEND_TEXT
    messages = [e["payload"]["message"] for e in events if e["kind"] == "message"]
    assert [m["sender"] for m in messages] == ["human", "horace"]
    assert messages[0]["content"] == SEND_TEXT and "#success" in messages[1]["content"]
    (call,) = [e for e in events if e["kind"] == "tool_call"]
    (result,) = [e for e in events if e["kind"] == "tool_result"]
    assert call["payload"]["tool"] == result["payload"]["tool"] == "horace_write_file"
    assert call["payload"]["arguments"] == {"path": "a.txt", "content": "hello"}
    assert result["payload"]["ok"] is True and result["payload"]["result"]["version"] == 1
    assert human_input["seq"] < call["seq"] < result["seq"]


def test_a_call_session_holds_start_input_tool_call_and_result_and_end(recorded: Recorded) -> None:
    data = recorded.export("read")
    events = data["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    assert data["meta"]["command"] == "call" and "message" not in kinds
    (human_input,) = [e for e in events if e["kind"] == "human_input"]
    assert human_input["payload"]["tool"] == "horace_read_file"
    assert human_input["payload"]["arguments"]["path"] == "a.txt"
    (call,) = [e for e in events if e["kind"] == "tool_call"]
    (result,) = [e for e in events if e["kind"] == "tool_result"]
    assert call["mad"] == result["mad"] == "horace" and call["payload"]["caller"] == "human"
    assert result["payload"]["ok"] is True and result["payload"]["result"]["content"] == "hello"
    assert human_input["seq"] < call["seq"] < result["seq"]
    assert events[-1]["payload"]["reason"] == "stopped"


@pytest.mark.parametrize("name", ["send", "read"])
def test_every_loaded_module_is_kept_with_its_source_and_sha256(recorded: Recorded, name: str) -> None:
    data = recorded.export(name)
    modules = data["modules"]
    assert {mad for m in modules for mad in m["mads"]} == CORE_MADS
    assert {m["name"].rsplit(".", 1)[-1] for m in modules} == CORE_MADS
    for module in modules:
        assert hashlib.sha256(module["source"].encode()).hexdigest() == module["sha256"], module["name"]
        assert Path(module["path"]).read_text(encoding="utf-8") == module["source"], module["name"]
    by_mad = {mad: m["sha256"] for m in modules for mad in m["mads"]}
    assert data["events"][0]["payload"]["modules"] == {m["name"]: m["sha256"] for m in modules}
    horace_events = [e for e in data["events"] if e["mad"] == "horace"]
    assert horace_events and all(e["code"] == by_mad["horace"] for e in horace_events)


@pytest.mark.parametrize("args", [("send", "--no-record", SEND_TEXT), ("call", "--no-record", "horace_list_files"),
                                  ("call", "horace_list_files", "--no-record")])
def test_no_record_leaves_no_file(mad: Invoke, tmp_path: Path, args: tuple[str, ...]) -> None:
    code, _, err = mad(*args)
    assert code == 0, err
    assert not (tmp_path / "sessions").exists() or not list((tmp_path / "sessions").iterdir())


# list -------------------------------------------------------------------------


def test_list_shows_every_session_in_the_order_they_started_with_its_errors(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "list")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["ID", "START", "DURATION", "EVENTS", "ERRORS", "SIZE"]
    assert [row.split()[0] for row in rows] == list(recorded.ids.values())
    errors = {row.split()[0]: int(row.split()[5]) for row in rows}
    assert errors[recorded.ids["missing"]] >= 1 and errors[recorded.ids["read"]] == 0
    for row in rows:
        assert row.split()[-1].split(",") == sorted(CORE_MADS)


def test_list_json_gives_id_start_duration_events_mads_errors_and_size(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == list(recorded.ids.values())
    assert [r["started"] for r in rows] == sorted(r["started"] for r in rows)
    by_name = {name: next(r for r in rows if r["id"] == sid) for name, sid in recorded.ids.items()}
    for name, row in by_name.items():
        assert {"id", "started", "duration_s", "events", "mads", "errors", "size"} <= set(row)
        assert row["events"] == len(recorded.export(name)["events"])
        assert row["mads"] == sorted(CORE_MADS) and row["size"] > 0 and row["duration_s"] >= 0
    assert by_name["missing"]["errors"] >= 1
    assert by_name["send"]["errors"] == by_name["read"]["errors"] == 0


def test_list_skips_a_file_that_is_not_a_journal_with_a_warning(mad: Invoke, tmp_path: Path) -> None:
    sid = record(mad, tmp_path / "sessions", "call", "horace_list_files")
    (tmp_path / "sessions" / "junk.db").write_text("not sqlite")
    code, out, err = mad("sessions", "list", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [sid]
    assert "junk.db" in err


# show -------------------------------------------------------------------------


def test_show_json_prints_one_object_per_line_with_seq_kind_mad_and_payload(recorded: Recorded) -> None:
    events = recorded.show("send")
    assert events == recorded.export("send")["events"]
    for event in events:
        assert {"seq", "kind", "mad", "payload"} <= set(event) and isinstance(event["payload"], dict)


def test_show_prints_one_line_per_event_with_seq_kind_and_mad(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "show", recorded.ids["read"])
    assert code == 0, err
    lines = out.splitlines()
    events = recorded.export("read")["events"]
    assert len(lines) == len(events)
    for line, event in zip(lines, events):
        seq, _, kind, mad, *_ = line.split()
        assert (int(seq), kind, mad) == (event["seq"], event["kind"], event["mad"] or "-")


def test_show_kind_is_repeatable_and_keeps_only_those_kinds(recorded: Recorded) -> None:
    events = recorded.show("send", "--kind", "tool_call", "--kind", "tool_result")
    assert [e["kind"] for e in events] == ["tool_call", "tool_result"]
    assert [e["kind"] for e in recorded.show("send", "--kind", "message")] == ["message", "message"]


def test_show_mad_keeps_only_that_mads_events(recorded: Recorded) -> None:
    events = recorded.show("send", "--mad", "horace")
    assert events and {e["mad"] for e in events} == {"horace"}
    assert {"tool_call", "tool_result", "message"} <= {e["kind"] for e in events}
    assert [e["payload"]["message"]["sender"] for e in recorded.show("send", "--mad", "human", "--kind", "message")] \
        == ["human"]


def test_show_since_a_time_after_every_event_gives_nothing_and_one_hour_ago_gives_all(recorded: Recorded) -> None:
    later = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
    assert recorded.show("read", "--since", later) == []
    assert recorded.show("read", "--since", "1h") == recorded.export("read")["events"]


def test_show_since_that_is_not_a_time_exits_2(recorded: Recorded) -> None:
    assert_one_error_line(*recorded.mad("sessions", "show", recorded.ids["read"], "--since", "yesterday-ish"),
                          "not a time")


# search -----------------------------------------------------------------------


def test_search_finds_a_word_in_messages_across_sessions(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "search", "hello")
    assert code == 0, err
    found = {line.split()[0] for line in out.splitlines()}
    assert found == {recorded.ids["send"], recorded.ids["reply"]}
    assert "[hello]" in out


def test_search_json_gives_session_seq_and_snippet_of_each_matching_message(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "search", "hello", "--json")
    assert code == 0, err
    hits = json.loads(out)
    names = {sid: name for name, sid in recorded.ids.items()}
    assert {names[h["session"]] for h in hits} == {"send", "reply"}
    for hit in hits:
        assert "[hello]" in hit["snippet"]
        (event,) = [e for e in recorded.show(names[hit["session"]]) if e["seq"] == hit["seq"]]
        assert event["kind"] == "message" and "hello" in event["payload"]["message"]["content"]
    senders = {(names[h["session"]], h["sender"]) for h in hits}
    assert senders == {("send", "human"), ("reply", "horace")}


def test_search_without_a_match_says_no_match_on_stderr_and_exits_0(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "search", "xylophone")
    assert (code, out, err) == (0, "", "no match\n")
    code, out, _ = recorded.mad("sessions", "search", "xylophone", "--json")
    assert code == 0 and json.loads(out) == []


# export -----------------------------------------------------------------------


def test_export_jsonl_gives_meta_first_then_modules_then_events(recorded: Recorded) -> None:
    code, out, err = recorded.mad("sessions", "export", recorded.ids["send"])
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    whole = recorded.export("send")
    modules = len(whole["modules"])
    assert lines[0] == {"meta": whole["meta"]}
    assert lines[1:1 + modules] == [{"module": m} for m in whole["modules"]]
    assert lines[1 + modules:] == whole["events"]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_export_with_o_writes_to_the_file_exactly_what_it_prints(recorded: Recorded, tmp_path: Path,
                                                                fmt: str) -> None:
    sid = recorded.ids["read"]
    code, printed, err = recorded.mad("sessions", "export", sid, "--format", fmt)
    assert code == 0, err
    target = tmp_path / f"session.{fmt}"
    code, out, err = recorded.mad("sessions", "export", sid, "--format", fmt, "-o", str(target))
    assert code == 0 and out == "", err
    assert target.read_text(encoding="utf-8") == printed


def test_export_to_a_folder_that_does_not_exist_is_one_line_and_writes_nothing(recorded: Recorded,
                                                                               tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "folder" / "session.json"
    assert_one_error_line(*recorded.mad("sessions", "export", "last", "-o", str(target)),
                          f"cannot write {target}: No such file or directory")
    assert not (tmp_path / "no").exists()


# prune ------------------------------------------------------------------------


def test_prune_older_than_30d_removes_no_fresh_session(mad: Invoke, tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    sid = record(mad, sessions, "call", "horace_list_files")
    code, out, err = mad("sessions", "prune", "--older-than", "30d")
    assert code == 0 and out == "" and "0 recording(s) removed" in err
    assert [p.stem for p in sessions.glob("*.db")] == [sid]


def test_prune_removes_a_session_older_than_the_age_and_keeps_the_fresh_ones(mad: Invoke, tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    old = record(mad, sessions, "send", SEND_TEXT)
    fresh = [record(mad, sessions, "call", "horace_read_file", "path=a.txt"),
             record(mad, sessions, "call", "horace_list_files")]
    age(sessions / f"{old}.db", days=40)
    (sessions / "junk.db").write_text("not sqlite")
    code, out, err = mad("sessions", "prune", "--older-than", "30d", "--dry-run")
    assert code == 0 and out == f"would remove {sessions / old}.db\n", err
    assert len(list(sessions.glob("*.db"))) == 4
    code, out, err = mad("sessions", "prune", "--older-than", "30d")
    assert code == 0 and out == f"removed {sessions / old}.db\n", err
    assert sorted(p.name for p in sessions.glob("*.db")) == sorted([f"{sid}.db" for sid in fresh] + ["junk.db"])
    assert not list(sessions.glob(f"{old}*"))  # its -wal and -shm went with it
    code, out, _ = mad("sessions", "list", "--json")
    assert [r["id"] for r in json.loads(out)] == fresh


@pytest.mark.parametrize("older_than", ["soon", "-3d", "30 days"])
def test_prune_with_a_bad_duration_exits_2_and_removes_nothing(recorded: Recorded, older_than: str) -> None:
    assert_one_error_line(*recorded.mad("sessions", "prune", "--older-than", older_than), "not a duration")
    assert len(list(recorded.sessions.glob("*.db"))) == len(recorded.ids)


# IDs --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["show", "export"])
def test_an_unknown_id_exits_2_with_one_line(recorded: Recorded, command: str) -> None:
    assert_one_error_line(*recorded.mad("sessions", command, "1999"), "no session '1999'")


@pytest.mark.parametrize("command", ["show", "export"])
def test_a_prefix_shared_by_several_sessions_exits_2_with_one_line(recorded: Recorded, command: str) -> None:
    code, out, err = recorded.mad("sessions", command, "2")
    assert_one_error_line(code, out, err, "session '2' is ambiguous")
    assert recorded.ids["send"] in err


def test_a_unique_prefix_selects_its_session(recorded: Recorded) -> None:
    sid = recorded.ids["missing"]
    (start,) = recorded.show("missing", "--kind", "session_start")
    code, out, err = recorded.mad("sessions", "show", sid[:-1], "--json", "--kind", "session_start")
    assert code == 0, err
    assert json.loads(out) == start and start["payload"]["session_id"] == sid


@pytest.mark.parametrize("command", ["show", "export"])
def test_last_is_the_newest_recording(recorded: Recorded, command: str) -> None:
    code, out, err = recorded.mad("sessions", command, "last")
    assert code == 0, err
    assert out == recorded.mad("sessions", command, recorded.ids["reply"])[1]  # recorded last


@pytest.mark.parametrize("args", [("sessions", "show", "last"), ("replay",), ("rerun", "last")])
def test_last_with_no_recordings_exits_2_with_one_line(mad: Invoke, args: tuple[str, ...]) -> None:
    assert_one_error_line(*mad(*args), "no recordings in ")


@pytest.mark.parametrize("command", ["show", "export"])
def test_a_file_path_id_works_from_any_folder(recorded: Recorded, tmp_path: Path, command: str) -> None:
    path = recorded.sessions / f"{recorded.ids['read']}.db"
    elsewhere = make_invoke(tmp_path)  # its own, empty sessions folder
    code, by_path, err = elsewhere("sessions", command, str(path))
    assert code == 0, err
    assert by_path == recorded.mad("sessions", command, recorded.ids["read"])[1]


def _other_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make", [_other_sqlite, lambda p: p.write_text("not sqlite at all\n" * 100)],
                         ids=["other-sqlite", "not-sqlite"])
@pytest.mark.parametrize("command", ["show", "export"])
def test_a_db_file_that_is_not_a_journal_exits_2_with_one_line(
        recorded: Recorded, tmp_path: Path, make: Callable[[Path], Any], command: str) -> None:
    path = tmp_path / "other.db"
    make(path)
    assert_one_error_line(*recorded.mad("sessions", command, str(path)), f"{path} is not a mad journal")
