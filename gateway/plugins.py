"""The plugin host: builds a plugin manager, loads plugins, and is the only caller of its hooks.

Plugins come from the entry-point group ``gateway.plugins`` (the stores shipped with the
project register there too, exactly as a third-party package does) plus the built-in layouts.
A plugin that fails to load is recorded with its package name and skipped; two plugins that
claim the same scheme or layout name are an error naming both. Plugins named in the
environment variable ``GATEWAY_BLOCK_PLUGINS`` (comma-separated entry-point names) are not
loaded at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

import pluggy

from gateway import hookspecs, layouts
from gateway.errors import ConfigError, PluginError
from gateway.hookspecs import LayoutType, StoreType
from gateway.layouts import Layout

log = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_ENV = "GATEWAY_BLOCK_PLUGINS"
CORE_PACKAGE = "recording-gateway"


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    package: str
    error: str


@dataclass(frozen=True)
class Provided(Generic[T]):
    """Something a plugin adds, with who added it."""

    item: T
    plugin: str
    package: str


@dataclass
class Plugins:
    """What the loaded plugins provide, checked for conflicts."""

    stores: dict[str, Provided[StoreType]] = field(default_factory=dict)
    layouts: dict[str, Provided[LayoutType]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def store_type(self, scheme: str) -> StoreType:
        found = self.stores.get(scheme.lower())
        if found is None:
            known = ", ".join(sorted(self.stores)) or "none"
            raise ConfigError(f"unknown storage scheme {scheme!r} (installed: {known})")
        return found.item

    def scheme_for_backend(self, backend: str) -> str:
        """Map a ``--backend`` name (a scheme or one of its aliases) to a scheme."""
        name = backend.lower()
        for scheme, provided in self.stores.items():
            if name == scheme or name in provided.item.aliases:
                return scheme
        known = sorted({*self.stores, *(a for p in self.stores.values() for a in p.item.aliases)})
        raise ConfigError(f"unknown backend {backend!r} (installed: {', '.join(known) or 'none'})")

    def layout(self, name: str) -> Layout:
        found = self.layouts.get(name)
        if found is None:
            known = ", ".join(sorted(self.layouts)) or "none"
            raise ConfigError(f"unknown layout {name!r} (installed: {known})")
        return found.item.factory()


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    *, extra: Sequence[tuple[str, object]] = (), use_entry_points: bool = True
) -> Plugins:
    """Load the built-ins, every entry-point plugin and ``extra`` (name, plugin) pairs."""
    pm = make_plugin_manager()
    result = Plugins(blocked=_blocked_names())
    packages: dict[str, str] = {}

    def register(name: str, plugin: object, package: str) -> None:
        pm.register(plugin, name=name)
        packages[name] = package

    register("builtin-layouts", layouts, CORE_PACKAGE)
    for name, plugin in extra:
        register(name, plugin, getattr(plugin, "__name__", name))
    if use_entry_points:
        for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            package = ep.dist.name if ep.dist is not None else ep.value
            if ep.name in result.blocked:
                pm.set_blocked(ep.name)
                continue
            if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue  # the same distribution seen twice on sys.path
            try:
                register(ep.name, ep.load(), package)
            except Exception as exc:  # a broken plugin must not stop the others
                reason = f"{type(exc).__name__}: {exc}"
                result.failures.append(PluginFailure(ep.name, package, reason))
                log.warning(
                    "plugin %r from package %s failed to load: %s", ep.name, package, reason
                )

    for name, item in _collect(pm, pm.hook.gateway_store_types, packages):
        _claim(result.stores, item.scheme.lower(), Provided(item, name, packages[name]), "scheme")
    for name, item in _collect(pm, pm.hook.gateway_layouts, packages):
        _claim(result.layouts, item.name, Provided(item, name, packages[name]), "layout name")
    return result


def _blocked_names() -> list[str]:
    return [n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()]


def _collect(
    pm: pluggy.PluginManager, hook: Any, packages: dict[str, str]
) -> Iterable[tuple[str, Any]]:
    """Call ``hook`` on each plugin separately, so every result is attributed to its plugin."""
    for impl in hook.get_hookimpls():
        name = pm.get_name(impl.plugin) or "?"
        try:
            items = impl.function()
        except Exception as exc:
            raise PluginError(
                f"plugin {name!r} from package {packages.get(name, '?')} failed in "
                f"{hook.name}: {type(exc).__name__}: {exc}"
            ) from exc
        for item in items or ():
            yield name, item


def _claim(table: dict[str, Provided[T]], key: str, new: Provided[T], what: str) -> None:
    old = table.get(key)
    if old is not None:
        raise PluginError(
            f"two plugins claim the {what} {key!r}: {old.plugin!r} from package {old.package} "
            f"and {new.plugin!r} from package {new.package}; uninstall one, or block one with "
            f"{BLOCK_ENV}={new.plugin}"
        )
    table[key] = new
