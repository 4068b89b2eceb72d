"""Plugins: packages that register ops and passes.

Rules:
  1. A plugin is a module that registers ops (``spdnn.register_op``) and passes
     (``spdnn.register_pass``) when imported. An entry point may also name a function; it is
     called with no arguments after import.
  2. Installed plugins are found through the ``spdnn.plugins`` entry-point group, e.g. in a
     plugin's ``pyproject.toml``::

         [project.entry-points."spdnn.plugins"]
         myops = "myops.spdnn_plugin"

     They are loaded once, lazily: by ``spdnn.load_plugins()``, or when a registry is first
     asked for a name it does not know or for all its entries (``spdnn passes``, ``spdnn
     schema``, loading a spec).
  3. ``spdnn ... --plugin MODULE`` (or ``load_plugin("MODULE")``) imports a module by name.
  4. A plugin that fails to import, or registers a name that is already taken, raises
     PluginError naming the plugin (the CLI exits 2). A module is imported once, however it
     was named.
"""

from __future__ import annotations

import importlib
from typing import Any

from spdnn.errors import SpdnnError

__all__ = ["GROUP", "PluginError", "load_plugin", "load_plugins", "loaded_plugins"]

#: The entry-point group plugins declare.
GROUP = "spdnn.plugins"

_loaded: dict[str, str] = {}  # plugin name -> what was loaded (module or entry point value)
_scanned = False


class PluginError(SpdnnError):
    """A plugin could not be loaded; the message names it."""


def load_plugins() -> list[str]:
    """Load every installed plugin of the ``spdnn.plugins`` group (once); return their names."""
    global _scanned
    if not _scanned:
        _scanned = True  # a plugin that looks a name up while loading must not rescan
        from importlib.metadata import entry_points

        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            _load(f"{ep.name} ({ep.value})", ep.value, ep.load)
    return sorted(_loaded)


def load_plugin(module: str) -> None:
    """Import plugin module ``module`` (``--plugin MODULE``)."""
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise PluginError(f"plugin {module!r} is not a module name (e.g. mypackage.spdnn_ops)")
    _load(module, module, lambda: importlib.import_module(module))


def loaded_plugins() -> dict[str, str]:
    """Plugins loaded so far: name -> module or entry point."""
    return dict(_loaded)


def _load(name: str, target: str, load: Any) -> None:
    if name in _loaded:
        return
    try:
        obj = load()
        if callable(obj) and not isinstance(obj, type):
            obj()
    except PluginError:
        raise
    except SpdnnError as e:
        raise PluginError(f"plugin {name}: {e}") from e
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of foreign code is the plugin's
        raise PluginError(f"plugin {name} could not be loaded: {type(e).__name__}: {e}") from e
    _loaded[name] = target
