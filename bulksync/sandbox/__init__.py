"""A local Suptask-compatible API for the demo, the tests and migration rehearsals."""

from bulksync.sandbox.server import Sandbox, parse_rate_limit

__all__ = ["Sandbox", "parse_rate_limit"]
