"""The MCP gateway: every MAD tool and the admin tools over stdio or streamable HTTP."""
from .server import Gateway

__all__ = ["Gateway"]
