"""The ``opslens`` command line (Typer); ``main`` is the console script.

pydantic's plugins (third-party entry points, e.g. an observability library's) are not
loaded by the command line unless ``PYDANTIC_DISABLE_PLUGINS`` is set (to an empty value,
to load them all): finding them scans every installed package's metadata, about a tenth of
a cold ``opslens runs``'s CPU, and opslens's own models use none. With them off, pydantic's
plugin loader is not imported either (it imports ``importlib.metadata``, and with it the
``email`` and ``zipfile`` packages, about 8% of a cold ``opslens runs``'s CPU): a stand-in
answers "no plugins", as the loader does when they are off, and hands over to the real
loader if the variable is changed later in the process.
"""

import os
import sys
import types
from typing import Any

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

_LOADER = "pydantic.plugin._loader"
_OFF = ("__all__", "1", "true")  # the values for which pydantic's loader loads no plugin


def _get_plugins() -> Any:
    """``pydantic.plugin._loader.get_plugins``: none while plugins are off, else the real one."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in _OFF:
        return ()
    if sys.modules.get(_LOADER) is _STAND_IN:
        del sys.modules[_LOADER]
    from importlib import import_module

    return import_module(_LOADER).get_plugins()


_STAND_IN = types.ModuleType(_LOADER, "opslens's stand-in while pydantic's plugins are off")
_STAND_IN.get_plugins = _get_plugins  # type: ignore[attr-defined]
if os.environ["PYDANTIC_DISABLE_PLUGINS"] in _OFF and _LOADER not in sys.modules:
    sys.modules[_LOADER] = _STAND_IN

from opslens.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
