"""Each reply in a MAD's pane shows which stage answered it; its header counts the tokens the engine saved."""
from __future__ import annotations

from typing import Any

from madtui.timeline import Timeline


def message(seq: int, stage: str | None) -> dict[str, Any]:
    data = {"ok": True, "stage": {"name": stage, "llm_calls": 0}} if stage else None
    return {"seq": seq, "wall": 1.0, "kind": "message", "mad": "horace", "payload": {
        "message": {"sender": "horace", "content": f"@human #success answer {seq}", "tags": ["success"], "data": data},
        "recipients": ["human"]}}


def stage(seq: int, name: str, avoided: int) -> dict[str, Any]:
    return {"seq": seq, "wall": 1.0, "kind": "stage", "mad": "horace",
            "payload": {"stage": name, "ok": True, "tokens_avoided": avoided}}


def test_replies_are_marked_by_stage_and_saved_tokens_add_up() -> None:
    timeline = Timeline()
    timeline.apply([stage(1, "dtr", 300), message(2, "dtr"), stage(3, "lppm", 420), message(4, "lppm"),
                    stage(5, "imperator", 0), message(6, "imperator"), message(7, None)])
    view = timeline.mads["horace"]
    assert [line.text.split(" #")[0] for line in view.lines] == [
        "→ @human", "↺→ @human", "✦→ @human", "→ @human"]
    assert view.tokens_avoided == 720


def test_the_resources_screen_says_the_tokens_saved_per_mad() -> None:
    from madtui.screens.resources import tokens_text

    timeline = Timeline()
    assert tokens_text(timeline) == ""
    timeline.apply([stage(1, "dtr", 300), stage(2, "lppm", 420),
                    {**stage(3, "dtr", 50), "mad": "rogers"}])
    timeline.mads["horace"].tokens = 1200
    assert tokens_text(timeline) == "tokens · 1,200 used · 770 saved: horace 720 · rogers 50"
