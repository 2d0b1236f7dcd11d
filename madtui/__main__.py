"""`python -m madtui` is `mad`."""
from madtui.cli import main

main()
