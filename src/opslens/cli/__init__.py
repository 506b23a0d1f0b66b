"""The ``opslens`` command line (Typer); ``main`` is the console script."""

from opslens.cli.app import app, main

__all__ = ["app", "main"]
