"""The ``gateway`` command line. Imports no web framework: ``serve`` loads it when it runs."""

from gateway.cli.main import main

__all__ = ["main"]
