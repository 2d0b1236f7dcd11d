"""The composer's completion, headless: `@` completes MADs, then their tools, then the parameters still missing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from madtui.completion import Completer
from mads.kernel import Config, Ecosystem

ADMIN_TOOLS = ["mad_status", "mad_send", "mad_restart_mad", "mad_pause", "mad_resume", "mad_profile"]


@pytest.fixture(scope="module")
def core_tools(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The core MADs' tools as the gateway lists them (name, description, input schema), plus the admin tools."""
    home: Path = tmp_path_factory.mktemp("home")
    specs = Ecosystem(Config(home=home, include_package=True)).tools().values()
    admin = [{"name": name, "description": "", "input_schema": {"type": "object", "properties": {}}}
             for name in ADMIN_TOOLS]
    return [spec.describe() for spec in specs] + admin


@pytest.fixture
def completer(core_tools: list[dict[str, Any]]) -> Completer:
    return Completer(core_tools)


def test_the_core_mads_are_known_and_admin_tools_are_not_a_mad(completer: Completer) -> None:
    assert completer.mads == ["dewey", "fiedler", "hopper", "horace", "rogers", "turing"]


def test_at_offers_every_mad_capitalised(completer: Completer) -> None:
    assert completer.candidates("@") == ["@Dewey ", "@Fiedler ", "@Hopper ", "@Horace ", "@Rogers ", "@Turing "]


def test_a_partial_name_completes_case_insensitively(completer: Completer) -> None:
    assert completer.complete("@Hor") == "@Horace "
    assert completer.complete("@hor") == "@Horace "
    assert completer.complete("@ho") == "@Hopper "  # the first of those it could be
    assert completer.complete("@TUR") == "@Turing "


def test_a_mention_later_in_a_sentence_completes_and_keeps_the_words_before(completer: Completer) -> None:
    assert completer.complete("ask @ro") == "ask @Rogers "


def test_an_at_inside_a_word_is_not_a_mention(completer: Completer) -> None:
    assert completer.complete("mail me@ho") is None


def test_an_unknown_name_has_no_completion(completer: Completer) -> None:
    assert completer.complete("@Zed") is None
    assert completer.complete("@Zed wri") is None


def test_a_mad_name_completes_to_its_tools_without_the_prefix(completer: Completer) -> None:
    assert completer.complete("@Horace wri") == "@Horace write_file "
    assert completer.candidates("@Horace re") == ["@Horace read_file ", "@Horace restore_version "]
    assert "@Horace converse " in completer.candidates("@Horace ")


def test_a_tool_completes_its_required_parameters_first_in_schema_order(completer: Completer) -> None:
    assert completer.complete("@Horace write_file ") == "@Horace write_file path="
    assert completer.parameters("horace", "read_file") == ["path", "version"]
    assert completer.parameters("Dewey", "search")[0] == "query"


def test_parameters_already_given_are_not_offered_again(completer: Completer) -> None:
    assert completer.complete("@Horace write_file path=tui.txt ") == "@Horace write_file path=tui.txt content="
    assert completer.complete("@Horace write_file path=tui.txt content=hello ") is None


def test_a_partial_parameter_name_completes(completer: Completer) -> None:
    assert completer.complete("@Horace write_file path=a.txt co") == "@Horace write_file path=a.txt content="


def test_a_value_being_typed_is_left_alone(completer: Completer) -> None:
    assert completer.complete("@Horace write_file path=tu") is None


def test_an_unknown_tool_offers_no_parameters(completer: Completer) -> None:
    assert completer.complete("@Horace fly ") is None


def test_new_tools_replace_the_old_ones() -> None:
    completer = Completer([{"name": "probe_ping", "description": "", "input_schema": {"properties": {"text": {}},
                                                                                         "required": ["text"]}}])
    assert completer.complete("@pr") == "@Probe "
    assert completer.complete("@Probe ping ") == "@Probe ping text="
    completer.set_tools([])
    assert completer.mads == [] and completer.complete("@pr") is None
