"""MAD CP parsing is a pure function that reads mentions, tags, kind and commands, and never raises."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mads.kernel.message import Command, Message, RawJSON, new_id, parse


def test_mentions_and_tags_are_read_case_insensitively_without_emails() -> None:
    parsed = parse("Hi @Dewey and @horace, mail bob@example.com #Review-42 #status C#")
    assert parsed.mentions == ["dewey", "horace"]
    assert parsed.tags == ["review-42", "status"]
    assert parsed.kind == "prose"


def test_key_value_command_is_deterministic() -> None:
    parsed = parse('@Dewey search query="budget 2026" limit=5')
    assert parsed.kind == "deterministic"
    assert parsed.command == Command("dewey", "search", {"query": "budget 2026", "limit": "5"}, True)


def test_json_command_is_deterministic_and_typed() -> None:
    parsed = parse('@Dewey search {"query": "budget", "limit": 5}')
    assert parsed.command == Command("dewey", "search", {"query": "budget", "limit": 5}, False)


def test_raw_json_pairs_keep_their_type() -> None:
    parsed = parse("@Rogers create_conversation name=ops participants:='[\"human\"]'")
    assert parsed.command is not None
    assert parsed.command.args["participants"] == RawJSON(["human"])


def test_prose_after_a_mention_is_a_command_candidate_with_an_error() -> None:
    parsed = parse("@Dewey search for the budget please")
    assert parsed.kind == "prose"
    assert parsed.command is not None and parsed.command.error == "expected key=value, got 'for'"


def test_paths_alone_are_fixed_data_by_reference() -> None:
    parsed = parse("@Horace notes/a.txt https://example.com/x.pdf #review")
    assert parsed.kind == "fixed"
    assert parsed.paths == ["https://example.com/x.pdf", "notes/a.txt"]


def test_reply_addresses_the_sender_and_keeps_the_correlation() -> None:
    original = Message.create("c1", "human", "@Dewey search query=x")
    reply = original.reply("dewey", "3 hits", tags=["success"])
    assert reply.reply_to == original.id
    assert reply.correlation_id == original.correlation_id == original.id
    assert reply.mentions == ["human"] and reply.tags == ["success"]
    assert reply.content == "@human #success 3 hits"


def test_ids_sort_by_creation() -> None:
    ids = [new_id() for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000 and all(len(i) == 26 for i in ids)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_parse_never_raises_on_any_text(text: str) -> None:
    parsed = parse(text)
    assert parsed.kind in ("deterministic", "fixed", "prose")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("@#=:{}[]\"' \\ab_.-/\n")), max_size=60))
def test_parse_never_raises_on_protocol_like_text(text: str) -> None:
    parsed = parse(text)
    if parsed.kind == "deterministic":
        assert parsed.command is not None and parsed.command.error is None
