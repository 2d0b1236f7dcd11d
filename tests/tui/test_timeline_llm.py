"""The timeline's view of LLM calls: in flight with what streamed so far, a retry's wait, the answer or a cancel."""
from __future__ import annotations

from typing import Any

from madtui.screens.resources import calls_text
from madtui.timeline import Timeline


def event(seq: int, kind: str, wall: float, **payload: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "mad": "fiedler", "wall": wall, "payload": payload}


def test_a_call_in_flight_gathers_its_chunks_shows_a_retry_and_ends_with_its_answer() -> None:
    timeline = Timeline()
    timeline.apply([event(1, "session_start", 0.0, mads=["horace"]),
                    event(2, "llm_call", 10.0, caller="horace", model="m", call=1)])
    assert timeline.calls_in_flight == 1
    timeline.apply([event(3, "llm_retry", 10.5, caller="horace", call=1, model="m", error="openai: rate limited (429)",
                          wait_s=2.0, attempt=2)])
    view = timeline.mads["horace"]
    assert view.in_flight[1]["note"] == "openai: rate limited (429): asking again in 2 s (try 2)"
    assert view.lines[-1].text == "↻ m openai: rate limited (429): asking again in 2 s (try 2)"
    assert "horace     m · 3.0 s · 0 tokens · openai: rate limited" in calls_text(timeline, 13.0)
    before = timeline.snapshot()
    timeline.apply([event(4, "llm_chunk", 12.6, caller="horace", call=1, text="Hel", n=1),
                    event(5, "llm_chunk", 12.7, caller="horace", call=1, text="lo", n=2)])
    assert (view.in_flight[1]["text"], view.in_flight[1]["chunks"], view.in_flight[1]["note"]) == ("Hello", 2, None)
    assert before.views["horace"]["in_flight"][1]["text"] == ""  # a replay checkpoint keeps what it saw
    timeline.apply([event(6, "llm_result", 12.8, caller="horace", call=1, model="m", ok=True, input_tokens=5,
                          output_tokens=2, text="Hello", first_token_ms=2600.0, tokens_per_s=10.0, chunks=2)])
    assert timeline.calls_in_flight == 0 and calls_text(timeline, 13.0) == ""
    assert view.lines[-1].text == "✦ m 7 tokens · first token 2.60 s · 10 tokens/s"


def test_a_cancelled_call_says_so_once_and_a_restart_forgets_calls_in_flight() -> None:
    timeline = Timeline()
    timeline.apply([event(1, "session_start", 0.0, mads=["horace"]),
                    event(2, "llm_call", 1.0, caller="horace", model="m", call=1),
                    event(3, "llm_cancelled", 3.5, caller="horace", call=1, model="m", elapsed_ms=2500.0),
                    event(4, "llm_result", 3.5, caller="horace", call=1, model="m", ok=False, error="cancelled")])
    view = timeline.mads["horace"]
    assert [line.text for line in view.lines] == ["✦ m cancelled after 2.5 s"] and not view.in_flight
    timeline.apply([event(5, "llm_call", 4.0, caller="horace", model="m", call=2),
                    event(6, "session_start", 5.0, mads=["horace"])])
    assert timeline.calls_in_flight == 0
