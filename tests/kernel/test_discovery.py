"""MADs are discovered from the package and from MAD_PATH folders, loaded by path."""
from __future__ import annotations

from pathlib import Path

import pytest

from mads.kernel import Config, Ecosystem
from mads.kernel.discovery import DiscoveryError, discover

PROBE = '''
from mads.kernel import MAD, tool

class Probe(MAD):
    """Answers pings."""
    name = "probe"

    @tool
    async def ping(self, text: str, times: int = 1) -> dict:
        """Echo the text."""
        return {"echo": text * times}
'''


def test_a_mad_path_module_is_loaded_with_its_source_and_hash(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "_private.py").write_text("raise RuntimeError('never loaded')")
    modules = discover([tmp_path], include_package=False)
    assert [m.path.name for m in modules] == ["probe.py"]
    assert modules[0].source == PROBE and len(modules[0].sha256) == 64
    assert [cls.name for cls in modules[0].mads] == ["probe"]


async def test_a_mad_path_mad_answers_calls(tmp_path: Path) -> None:
    (tmp_path / "mads").mkdir()
    (tmp_path / "mads" / "probe.py").write_text(PROBE)
    config = Config(home=tmp_path / "home", mad_path=[tmp_path / "mads"], include_package=False, environ={})
    async with Ecosystem(config) as eco:
        assert await eco.call_tool("probe_ping", {"text": "hi", "times": "2"}, raw=True) == {"echo": "hihi"}


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("x = 1\ndef (:\n")
    with pytest.raises(DiscoveryError, match=r"broken.py:2: SyntaxError"):
        discover([tmp_path], include_package=False)


def test_two_mads_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PROBE)
    (tmp_path / "b.py").write_text(PROBE)
    with pytest.raises(DiscoveryError, match="'probe' is defined twice"):
        discover([tmp_path], include_package=False)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="MAD_PATH folder not found"):
        discover([tmp_path / "nope"], include_package=False)
