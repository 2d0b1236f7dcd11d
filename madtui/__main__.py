"""`python -m madtui` is `mad`.

`-m` puts the working directory first on sys.path, where a user's own `mads/` folder of MAD
modules would hide the `mads` package this workbench is built on; it is taken off again
(unless the working directory is where the packages themselves live, as in a checkout).
"""
import os
import sys
from pathlib import Path

_cwd = Path.cwd().resolve()
if _cwd != Path(__file__).resolve().parent.parent:
    sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != _cwd]

from madtui.cli import main  # noqa: E402

main()
