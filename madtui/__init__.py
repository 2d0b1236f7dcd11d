"""The workbench: the `mad` CLI, the host of the ecosystem subprocess, and the Textual app."""

__version__ = "0.1.0"
