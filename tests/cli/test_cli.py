"""The `mad` CLI: every command documented, calls typed by schema, one-line errors and exit codes."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from madtui.cli import cli

# The core table of MADS.md: every tool and its required fields.
CORE_TOOLS = {
    "rogers_create_conversation": ["name"], "rogers_list_conversations": [],
    "rogers_get_conversation": ["conversation_id"], "rogers_send_message": ["conversation_id", "content"],
    "rogers_get_messages": ["conversation_id"], "rogers_join_conversation": ["conversation_id", "participant"],
    "rogers_leave_conversation": ["conversation_id", "participant"], "rogers_get_connections": [],
    "rogers_get_stats": [], "rogers_converse": ["prompt"],
    "fiedler_list_models": [], "fiedler_set_models": ["models"], "fiedler_send": ["prompt"],
    "fiedler_get_usage": [], "fiedler_converse": ["prompt"],
    "turing_set_secret": ["name", "value"], "turing_list_secrets": [], "turing_rotate_secret": ["name"],
    "turing_delete_secret": ["name"], "turing_grant": ["name", "mad"], "turing_revoke": ["name", "mad"],
    "turing_audit": [], "turing_converse": ["prompt"],
    "dewey_search": ["query"], "dewey_get_transcript": ["conversation_id"], "dewey_import": ["path"],
    "dewey_export": ["conversation_id", "path"], "dewey_converse": ["prompt"],
    "horace_write_file": ["path", "content"], "horace_read_file": ["path"], "horace_list_files": [],
    "horace_get_file_info": ["path"], "horace_restore_version": ["path", "version"],
    "horace_tag_file": ["path", "tags"], "horace_converse": ["prompt"],
}


@pytest.fixture
def mad(tmp_path: Path):
    """Run `mad ...` in-process with MAD_HOME in tmp_path; returns (exit code, stdout, stderr)."""
    runner = CliRunner()
    env = {"MAD_HOME": str(tmp_path / "home"), "MAD_MASTER_KEY": base64.b64encode(b"k" * 32).decode(),
           "MAD_PROVIDER": "offline", "MAD_PATH": "", "MAD_SESSIONS": str(tmp_path / "sessions")}

    def invoke(*args: str):
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_help_lists_every_command_and_each_has_an_example(mad) -> None:
    """Every command and subcommand, found by walking the `mad` group (none listed by hand): its group's
    help lists it, and its own help has a text and at least one `Example: mad ...`."""

    def walk(command, path: tuple[str, ...] = ()):
        yield path, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, (*path, name))

    found = list(walk(cli))
    assert len(found) > len(cli.commands)  # subcommands too
    for path, command in found:
        shown = " ".join(("mad", *path))
        code, out, err = mad(*path, "--help")
        assert code == 0, f"{shown} --help: {err}"
        assert out.startswith(f"Usage: {shown} "), out
        assert (command.help or "").strip(), f"{shown} has no help text"
        assert "\n  Example: mad " in out, f"{shown} --help shows no example:\n{out}"
        for name in getattr(command, "commands", {}):
            assert f"\n  {name} " in out.split("Commands:", 1)[1], f"{shown} --help does not list {name}"


def test_tools_json_lists_every_core_tool_with_schema_and_required_fields(mad) -> None:
    code, out, _ = mad("tools", "--json")
    assert code == 0
    tools = {t["name"]: t for t in json.loads(out)}
    for name, required in CORE_TOOLS.items():
        assert name in tools, name
        schema = tools[name]["input_schema"]
        assert schema["type"] == "object" and sorted(schema["required"]) == sorted(required), name
        assert tools[name]["description"], name


def test_call_prints_the_result_as_json(mad) -> None:
    code, out, err = mad("call", "rogers_create_conversation", "name=ops", 'participants:=["human","dewey"]')
    assert code == 0, err
    conversation = json.loads(out)
    assert conversation["name"] == "ops" and conversation["participants"] == ["human", "dewey"]


def test_args_option_passes_a_json_object(mad) -> None:
    code, out, err = mad("call", "horace_write_file", "--args", '{"path": "a.txt", "content": "hi"}')
    assert code == 0, err
    assert json.loads(out)["version"] == 1


@pytest.mark.parametrize(("args", "expected"), [
    (["call", "horace_writ_file", "path=a"], "mad: error: unknown tool 'horace_writ_file' (did you mean horace_write_file"),
    (["call", "horace_write_file", "path=a.txt"], "mad: error: horace_write_file: missing required argument 'content'"),
    (["call", "horace_read_file", "path=a.txt", "version=two"], "mad: error: horace_read_file: version: expected an integer, got 'two'"),
    (["call", "horace_write_file", "path=a.txt", "content=x", "colour=red"], "mad: error: horace_write_file: unexpected argument 'colour'"),
    (["call", "horace_write_file", "oops"], "mad: error: expected key=value, got 'oops'"),
    (["call", "horace_write_file", "--args", "[1]"], "mad: error: --args must be a JSON object"),
    (["call", "horace_write_file", "path=a.txt", "path=b.txt", "content=x"], "mad: error: argument 'path' is given twice"),
    (["call", "horace_write_file", "path=a.txt", "content=x", "--args", '{"path": "b.txt"}'],
     "mad: error: argument 'path' is given twice (as key=value and in --args)"),
    (["send", "@Horse list_files"], "mad: error: no participant named @horse (did you mean @horace?)"),
    (["send", "@Dewey search query=x", "--provider", "bogus"], "mad: error: Invalid value for '--provider'"),
    (["run", "--bogus"], "mad: error: No such option '--bogus'. Did you mean '--bus'? (see mad run --help)"),
    (["call"], "mad: error: Missing argument 'TOOL' (see mad call --help)"),
    (["sessions", "show", "last", "--kind", "bogus"], "mad: error: Invalid value for '--kind': 'bogus' is not one of"),
    (["tui", "--mad-path", "no/such/folder"], "mad: error: MAD_PATH folder not found: no/such/folder"),
    (["tui", "--sessions", "/dev/null/x"], "mad: error: cannot use /dev/null/x as --sessions: Not a directory"),
    (["send", "@Dewey search query=x", "--sessions", "/dev/null/x"],
     "mad: error: cannot record into /dev/null/x: Not a directory (--sessions DIR, or --no-record)"),
    (["nope"], "mad: error: No such command 'nope' (see mad --help)"),
])
def test_usage_errors_exit_2_with_one_line_and_change_nothing(mad, tmp_path: Path, args, expected) -> None:
    code, out, err = mad(*args)
    assert code == 2
    assert err.startswith(expected) and err.count("\n") == 1
    assert out == ""
    assert not (tmp_path / "home").exists()


def test_a_tool_error_exits_1_with_one_line(mad, tmp_path: Path) -> None:
    code, out, err = mad("call", "horace_write_file", "path=../x", "content=no")
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("mad: error: ")
    assert not (tmp_path / "home" / "x").exists() and not (tmp_path / "x").exists()


def test_send_runs_a_command_and_prints_the_reply(mad) -> None:
    code, out, err = mad("send", "@Horace write_file path=notes/a.txt content=hello")
    assert code == 0, err
    assert out.startswith("── horace · dtr · 0 LLM calls\n#success")
    code, out, err = mad("send", "@Dewey search query=hello")
    assert code == 0, err
    assert "── dewey · dtr · 0 LLM calls" in out and '"hits"' in out


def test_send_error_reply_exits_1(mad) -> None:
    code, out, err = mad("send", "@Horace read_file path=missing.txt")
    assert code == 1
    assert "#error" in out


def test_prose_offline_tells_how_to_configure_a_model(mad) -> None:
    code, out, _ = mad("send", "@Horace what files do you have?")
    assert "No language model is configured" in out and "--provider" in out


def _mad_process(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAD_HOME": str(home), "MAD_SESSIONS": str(home.parent / "sessions")}
    env.pop("MAD_PATH", None)
    return subprocess.run([sys.executable, "-m", "madtui", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_state_persists_across_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = _mad_process(home, "call", "rogers_create_conversation", "name=ops",
                           'participants:=["human","dewey"]')
    assert created.returncode == 0, created.stderr
    conversation = json.loads(created.stdout)
    listed = _mad_process(home, "call", "rogers_list_conversations")
    assert listed.returncode == 0, listed.stderr
    assert conversation["id"] in listed.stdout
    sent = _mad_process(home, "send", "--conversation", conversation["id"], "@Dewey search query=ops")
    assert sent.returncode == 0, sent.stderr


GREETER = '''\
from mads.kernel import MAD, tool


class Greeter(MAD):
    """Greets."""

    @tool
    async def greet(self, name: str) -> str:
        """Say hello."""
        return f"hello {name}"
'''


def test_a_mads_folder_in_the_working_directory_does_not_hide_the_mads_package(tmp_path: Path) -> None:
    """A project keeps its MADs in ./mads (the natural name); `python -m madtui` run there still finds the
    kernel and the core MADs, and loads the project's MAD once, from MAD_PATH."""
    (tmp_path / "mads").mkdir()
    (tmp_path / "mads" / "greeter.py").write_text(GREETER)
    env = {**os.environ, "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
           "MAD_PATH": "mads", "MAD_MASTER_KEY": "a" * 64}
    done = subprocess.run([sys.executable, "-m", "madtui", "call", "greeter_greet", "name=ann"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "hello ann"
    listed = subprocess.run([sys.executable, "-m", "madtui", "tools", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    names = [tool["name"] for tool in json.loads(listed.stdout)]
    assert names.count("greeter_greet") == 1 and "horace_write_file" in names
