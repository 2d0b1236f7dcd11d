"""The kernel and every MAD run headless: importing them loads neither textual nor madtui."""
from __future__ import annotations

import subprocess
import sys


def test_kernel_and_mads_never_import_textual_or_madtui() -> None:
    code = (
        "import sys; from mads.kernel import Ecosystem, Config; "
        "Ecosystem(Config()).load(); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'madtui')]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
