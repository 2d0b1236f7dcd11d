"""The kernel, the MADs and the workbench's headless core import without Textual and start nothing."""
from __future__ import annotations

import subprocess
import sys

HEADLESS = ["mads.kernel", "mads.kernel.journal", "mads.kernel.gateway", "mads.kernel.resources",
            "mads.dewey", "mads.fiedler", "mads.horace", "mads.rogers", "mads.turing",
            "madtui.timeline", "madtui.replay", "madtui.rerun", "madtui.diff"]


def test_the_core_imports_without_textual_and_builds_nothing_at_import_time() -> None:
    code = (f"import sys, threading\nimport {', '.join(HEADLESS)}\n"
            "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n"
            "assert threading.active_count() == 1, threading.enumerate()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_one_process_needs_no_redis_client() -> None:
    code = ("import sys, asyncio, tempfile\nfrom pathlib import Path\nfrom mads.kernel import Config, Ecosystem\n"
            "async def main():\n    with tempfile.TemporaryDirectory() as home:\n"
            "        async with Ecosystem(Config(home=Path(home), environ={}, sample_interval=0, only=['horace'])):\n"
            "            pass\nasyncio.run(main())\n"
            "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if m.startswith('redis'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
