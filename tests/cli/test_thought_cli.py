"""The Thought Engine from the command line: each reply says its stage and tokens; LPPM learns across runs."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import mad_cli

RULES = [
    {"when": r"(?i)please save (?P<content>\w+) into (?P<path>\S+)$", "mad": "horace",
     "tool_calls": [{"name": "horace_write_file", "arguments": {"path": "{path}", "content": "{content}"}}],
     "usage": {"input_tokens": 120, "output_tokens": 30}},
    {"when": "(?i)please save", "mad": "horace", "after_tool": True, "text": "saved",
     "usage": {"input_tokens": 100, "output_tokens": 20}},
]


def test_mad_send_json_names_the_stage_and_tokens_and_a_learned_phrasing_is_served_by_lppm(tmp_path: Path) -> None:
    script = tmp_path / "rules.jsonl"
    script.write_text("".join(json.dumps(rule) + "\n" for rule in RULES))
    env = {**os.environ, "MAD_HOME": str(tmp_path / "home"), "MAD_SESSIONS": str(tmp_path / "sessions"),
           "MAD_MASTER_KEY": "9" * 64, "MAD_PROVIDER": "scripted", "MAD_SCRIPT": str(script)}

    def stage_of(text: str, *extra: str) -> dict:
        done = mad_cli(env, "send", text, "--json", "--no-record", *extra)
        assert done.returncode == 0, done.stderr
        (reply,) = json.loads(done.stdout)["replies"]
        return reply["data"]["stage"]

    first = stage_of("@Horace please save alpha into a.txt", "--lppm-min-support", "1")
    assert first["name"] == "imperator" and first["llm_calls"] == 2
    assert first["tokens_in"] == 220 and first["tokens_out"] == 50 and first["tokens"] == 270
    served = stage_of("@Horace please save beta into b.txt", "--lppm-min-support", "1")
    assert served["name"] == "lppm" and served["llm_calls"] == 0 and served["tokens_in"] == served["tokens_out"] == 0
    assert served["tokens_avoided"] > 0 and (tmp_path / "home" / "files" / "b.txt").read_text() == "beta"
    again = stage_of("@Horace please save gamma into c.txt")  # the default asks for 2 agreeing resolutions
    assert again["name"] == "imperator"
    dtr = stage_of("@Horace read_file path=c.txt")
    assert dtr["name"] == "dtr" and dtr["llm_calls"] == 0
