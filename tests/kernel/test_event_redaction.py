"""Events are redacted by scanning their JSON: the fast path records exactly what the deep copy would."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mads.kernel.events import REDACTED, Custom, MessagePublished, ToolCall, ToolResult, looks_secret, to_json
from mads.kernel.hub import EventHub, ListSink, Redactor
from mads.kernel.journal import JournalWriter
from mads.kernel.journal import reader

SECRET_NAMES = ["api_key", "API-KEY", "key", "my-key", "Token", "client_secret", "password", "PASSWD",
                "passphrase", "private_key", "credentials", "Authorization", "x-auth", "\u212aey",
                "pa\u017f\u017fword", "credent\u0131al"]
"""Names `looks_secret` flags, some spelt with characters that only match ignoring case."""
KEYS = st.sampled_from([*SECRET_NAMES, "text", "path", "monkey", "keys", "author", "n", "data"])
TEXTS = st.sampled_from(["hi", "s3cr3t-value", 'quo"te\\back\nline', "é-\u0131-ß", "the token is here"])
JSONISH = st.recursive(
    TEXTS | st.none() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _redactor(secrets: list[str]) -> Redactor:
    redactor = Redactor()
    for secret in secrets:
        redactor.add(secret)
    return redactor


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(KEYS, JSONISH, min_size=1, max_size=5),
       secrets=st.lists(st.sampled_from(["s3cr3t", 'quo"te\\back', "line\nbreak", "é-\u0131", "hunter2"]), max_size=2))
def test_the_scanned_payload_always_equals_the_redacted_deep_copy(payload: dict[str, Any], secrets: list[str]) -> None:
    redactor = _redactor(secrets)
    clean, text = redactor.payload(payload)
    expected = redactor.value(payload)
    assert to_json(clean) == to_json(expected)
    if text is not None:
        assert clean is payload and json.loads(text) == json.loads(to_json(expected))


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_value_under_any_secret_looking_name_is_redacted(name: str) -> None:
    assert looks_secret(name)
    clean, text = Redactor().payload({"outer": [{name: "visible?"}]})
    assert clean == {"outer": [{name: REDACTED}]} and text is None


def test_a_payload_without_secrets_is_kept_with_its_json_and_not_copied() -> None:
    payload = {"message": {"content": "hello", "mentions": ["a"]}, "recipients": ["a"]}
    clean, text = _redactor(["hunter2"]).payload(payload)
    assert clean is payload and text == '{"message":{"content":"hello","mentions":["a"]},"recipients":["a"]}'


def test_a_secret_with_quotes_backslashes_and_newlines_is_redacted_inside_nested_strings() -> None:
    secret = 'a"b\\c\nd'
    hub = EventHub(_redactor([secret]))
    sink = ListSink()
    hub.add_sink(sink)
    hub.emit(Custom(mad="probe", name="note", data={"outer": {"inner": [f"before {secret} after"]}}))
    (event,) = sink.events
    assert event.payload == {"outer": {"inner": [f"before {REDACTED} after"]}}
    assert secret not in to_json(event.payload)


def test_values_under_secret_looking_keys_are_redacted_whatever_the_case() -> None:
    hub = EventHub()
    sink = ListSink()
    hub.add_sink(sink)
    hub.emit(ToolCall(mad="probe", tool="probe_t", caller="human",
                      arguments={"OpenAI_API_Key": "sk-1", "\u212aey": "k", "path": "a.txt"}))
    assert sink.events[0].payload["arguments"] == {"OpenAI_API_Key": REDACTED, "\u212aey": REDACTED, "path": "a.txt"}


def test_a_payload_changed_after_it_was_emitted_is_journaled_as_it_was(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "j.db")
    hub = EventHub()
    hub.add_sink(writer)
    items = ["first"]
    hub.emit(ToolResult(mad="probe", tool="probe_t", ok=True, result=items))
    items.append("later")
    writer.close()
    (event,) = reader.read_events(tmp_path / "j.db")
    assert event["payload"] == {"tool": "probe_t", "ok": True, "result": ["first"]}


def test_messages_sqlite_cannot_parse_are_still_journaled_with_their_batch(tmp_path: Path) -> None:
    """NaN next to an integer orjson refuses (the standard library writes NaN, which SQLite's JSON
    does not read), a lone surrogate and keys that are not strings: each event is kept, and the
    plain message committed in the same batch is found by search."""
    writer = JournalWriter(tmp_path / "j.db")
    hub = EventHub()
    hub.add_sink(writer)
    hub.emit(MessagePublished(mad="human", conversation="c", recipients=[],
                              message={"content": "odd", "sender": "human", "data": [math.nan, 2 ** 70]}))
    hub.emit(MessagePublished(mad="human", conversation="c", recipients=[],
                              message={"content": "lone \ud800 surrogate", "sender": "human"}))
    hub.emit(Custom(mad="probe", name="note", data={"counts": {1: "one", 2: "two"}}))
    hub.emit(MessagePublished(mad="human", conversation="c", recipients=[],
                              message={"content": "plain words", "sender": "human"}))
    writer.close()
    assert writer.error is None
    events = list(reader.read_events(tmp_path / "j.db"))
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[0]["payload"]["message"]["data"][1] == 2 ** 70
    assert events[1]["payload"]["message"]["content"] == "lone \ud800 surrogate"
    assert events[2]["payload"]["counts"] == {"1": "one", "2": "two"}
    assert [hit["seq"] for hit in reader.search(tmp_path, "plain")] == [4]


def test_to_json_is_compact_keeps_non_ascii_and_writes_unknown_objects_as_their_str() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    assert to_json({"é": ["ß", 1.5, None, True], "t": Thing(), 3: (1, 2)}) == \
        '{"é":["ß",1.5,null,true],"t":"a thing","3":[1,2]}'


class _Msg:
    """Enough of a Message for the hub: its fields and its wire form."""

    def __init__(self, content: str, data: Any = None) -> None:
        self.sender, self.conversation, self.correlation_id = "human", "c1", "k1"
        self.content, self.data = content, data

    def to_dict(self) -> dict[str, Any]:
        return {"id": "m1", "conversation": self.conversation, "sender": self.sender, "content": self.content,
                "correlation_id": self.correlation_id, "data": self.data}


@settings(max_examples=200, deadline=None)
@given(content=TEXTS, data=st.none() | st.dictionaries(KEYS, JSONISH, max_size=4),
       secrets=st.lists(st.sampled_from(["s3cr3t", 'quo"te\\back', "é-\u0131", "the token"]), max_size=2))
def test_a_message_event_is_recorded_exactly_as_the_general_path_records_it(content: str, data: Any,
                                                                            secrets: list[str]) -> None:
    """emit_message skips the secret-name scan for a message's own fields; what it records must not differ."""
    redactor = _redactor(secrets)
    fast, general = ListSink(), ListSink()
    hub = EventHub(redactor)
    hub.add_sink(fast)
    message = _Msg(content, data)
    hub.emit_message(message, ["a", "b"])
    hub.remove_sink(fast)
    hub.add_sink(general)
    hub.emit(MessagePublished(mad="human", conversation="c1", correlation_id="k1", message=message.to_dict(),
                              recipients=["a", "b"]))
    (got,), (want,) = fast.events, general.events
    assert (got.kind, got.mad, got.conversation, got.correlation_id) == \
        (want.kind, want.mad, want.conversation, want.correlation_id)
    assert to_json(got.payload) == to_json(want.payload)
    for secret in secrets:
        if len(secret) >= 4:  # shorter values are not taken as secrets (they would redact everyday words)
            assert secret not in to_json(got.payload)


def test_a_payload_orjson_refuses_is_still_redacted_by_name_and_by_value() -> None:
    """A big integer sends the payload to the standard library, whose text escapes non-ASCII names;
    redaction must not depend on that text."""
    redactor = _redactor(["s3cr3t-value"])
    clean, text = redactor.payload({"\u212aey": "hunter22", "n": 2 ** 70})
    assert text is None and clean == {"\u212aey": REDACTED, "n": 2 ** 70}
    clean, text = redactor.payload({"note": "s3cr3t-value", "n": 2 ** 70})
    assert text is None and clean == {"note": REDACTED, "n": 2 ** 70}
