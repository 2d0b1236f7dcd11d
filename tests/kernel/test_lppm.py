"""LPPM on an evaluation set: prose the Imperator resolved is served again with no LLM call, traps never are.

The oracle is the scripted provider in rule mode (`benchmarks/evaluation.py`, shared with the
lppm figures): each phrasing is a rule whose named groups fill one tool call of Horace, Dewey
or Rogers. Each phrasing is seen 2 or 3 times (the Imperator answers, LPPM learns), then asked
5 times with new values.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.evaluation import PHRASINGS, TRAPS, ask, ecosystem, expected, request, train
from madtui.rerun import rerun

async def test_learned_phrasings_are_served_without_the_llm_with_the_oracles_calls_and_traps_are_not(
        tmp_path: Path) -> None:
    served = total = 0
    wrong: list[Any] = []
    async with ecosystem(tmp_path) as eco:
        await train(eco)
        for mad, phrasing, tool, arguments, _, new in PHRASINGS:
            for values in new:
                total += 1
                stage, calls = await ask(eco, mad, request(phrasing, values))
                if stage["name"] != "lppm":
                    continue
                served += stage["llm_calls"] == 0
                defaults = {k: p.get("default") for k, p in
                            eco.tools()[tool].input_schema.get("properties", {}).items()}
                oracle = [(tool, expected(arguments, values))]
                normalised = [(name, {k: str(v) if isinstance(v, int) else v for k, v in args.items()
                                      if k not in defaults or v != defaults[k]})  # what the tool filled in
                              for name, args in calls]
                if normalised != oracle:
                    wrong.append((request(phrasing, values), calls, oracle))
        false_hits = []
        for trap in TRAPS:
            stage, _ = await ask(eco, trap.split()[0][1:].lower(), trap)
            if stage["name"] == "lppm":
                false_hits.append(trap)
    print(f"lppm: {served}/{total} new requests served with 0 LLM calls; {len(false_hits)} false hits")
    assert not wrong, wrong
    assert served >= 0.8 * total, f"{served} of {total}"
    assert false_hits == []


async def test_learned_templates_survive_a_restart_and_a_rerun_of_the_session_is_the_same(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    mad, phrasing, *_ , seen, new = PHRASINGS[0]
    async with ecosystem(tmp_path, sessions) as eco:
        for values in seen:
            await ask(eco, mad, request(phrasing, values))
        stage, _ = await ask(eco, mad, request(phrasing, new[0]))
        assert stage["name"] == "lppm"
    async with ecosystem(tmp_path) as eco:  # the same MAD_HOME: the templates are in Horace's state
        stage, calls = await ask(eco, mad, request(phrasing, new[1]))
        assert stage["name"] == "lppm" and stage["llm_calls"] == 0
        assert calls == [("horace_write_file", {"path": new[1]["path"], "content": new[1]["content"]})]
    (journal,) = sessions.glob("*.db")
    result = await rerun(journal, sessions=tmp_path / "reruns", mad_path=[])
    assert result.report["same"], json.dumps(result.report["mads"], indent=1)[:3000]


async def test_mad_lppm_lists_and_forgets_the_templates_and_a_forgotten_one_no_longer_serves(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from madtui.cli import cli

    mad, phrasing, *_, seen, new = PHRASINGS[0]
    env = {"MAD_HOME": str(tmp_path / "home")}
    async with ecosystem(tmp_path) as eco:
        for values in seen:
            await ask(eco, mad, request(phrasing, values))
        listed = CliRunner().invoke(cli, ["lppm", "list", "--json"], env=env)
        (template,) = json.loads(listed.stdout)
        assert template["mad"] == "horace" and template["serving"] and template["support"] == 2
        assert template["template"] == "please save {content0:name} into {path0:path}"
        assert template["plan"] == [{"tool": "horace_write_file", "arguments": {"path": {"slot": "path0"},
                                                                                "content": {"slot": "content0"}}}]
        text = CliRunner().invoke(cli, ["lppm", "list"], env=env).stdout
        assert f"{template['id']}  horace   serving support 2" in text
        gone = CliRunner().invoke(cli, ["lppm", "forget", template["id"]], env=env)
        assert gone.exit_code == 0 and gone.stdout.strip() == "forgot 1 template"
        stage, _ = await ask(eco, mad, request(phrasing, new[0]))
        assert stage["name"] == "imperator"
        unknown = CliRunner().invoke(cli, ["lppm", "forget", "nosuch"], env=env)
        assert unknown.exit_code == 2 and "no template 'nosuch'" in unknown.stderr
        assert CliRunner().invoke(cli, ["lppm", "forget"], env=env).exit_code == 2
        assert CliRunner().invoke(cli, ["lppm", "forget", "--mad", "horace"], env=env).exit_code == 0


async def test_fiedler_get_usage_shows_tokens_used_and_avoided_per_mad_and_stage(tmp_path: Path) -> None:
    mad, phrasing, *_, seen, new = PHRASINGS[0]
    async with ecosystem(tmp_path) as eco:
        for values in [*seen, new[0]]:
            await ask(eco, mad, request(phrasing, values))
        await ask(eco, mad, "@Horace read_file path=a.txt")
        usage = await eco.call_tool("fiedler_get_usage", {"mad": "horace"})
    stages = {row["stage"]: row for row in usage["stages"]}
    assert set(stages) == {"dtr", "lppm", "imperator"} and all(r["mad"] == "horace" for r in usage["stages"])
    assert stages["imperator"]["answers"] == 2 and stages["imperator"]["llm_calls"] == 4
    assert stages["imperator"]["tokens"] == usage["totals"]["input_tokens"] + usage["totals"]["output_tokens"] > 0
    assert stages["lppm"]["answers"] == 1 and stages["lppm"]["llm_calls"] == 0 and stages["lppm"]["tokens"] == 0
    assert stages["lppm"]["tokens_avoided"] > 0 and stages["dtr"]["tokens_avoided"] > 0
    assert usage["tokens_avoided"] == stages["lppm"]["tokens_avoided"] + stages["dtr"]["tokens_avoided"]
