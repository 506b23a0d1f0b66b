"""The ``opslens`` command line (Typer); ``main`` is the console script.

pydantic's plugins (third-party entry points, e.g. an observability library's) are not
loaded by the command line unless ``PYDANTIC_DISABLE_PLUGINS`` is set (to an empty value,
to load them all): finding them scans every installed package's metadata, about a tenth of
a cold ``opslens runs``'s CPU, and opslens's own models use none.
"""

import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from opslens.cli.app import app, main

__all__ = ["app", "main"]
