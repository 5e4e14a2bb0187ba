"""The plugin host: builds a plugin manager, loads plugins, and is the only caller of its hooks.

Plugins come from the entry-point group ``gateway.plugins`` (the stores shipped with the
project register there too, exactly as a third-party package does) plus the built-in layouts.
A plugin that fails to load is recorded with its package name and skipped, and so is a plugin
that implements a hook the contract does not have (``gateway_store_type`` for
``gateway_store_types``: a misspelt hook would otherwise be silently ignored); two plugins that
claim the same scheme or layout name are an error naming both. Plugins named in the
environment variable ``GATEWAY_BLOCK_PLUGINS`` (comma-separated entry-point names) are not
loaded at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import pluggy

from gateway import builtin_layouts, hookspecs
from gateway.errors import ConfigError, GatewayError, PluginError
from gateway.hookspecs import LayoutType, StoreType
from gateway.layout import Layout

log = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_ENV = "GATEWAY_BLOCK_PLUGINS"
CORE_PACKAGE = "recording-gateway"
_NO_OPTIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was not used: it failed to import, or does not keep the hook contract."""

    plugin: str
    """Its name (the entry-point name, or the name given to ``load_plugins(extra=...)``)."""
    package: str
    """The distribution that holds it (for an ``extra`` plugin: its module name)."""
    error: str
    """Why, for ``gateway plugins``: the exception, or the unknown hook it implements."""


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

    def layout(self, name: str, options: Mapping[str, str] = _NO_OPTIONS) -> Layout:
        """Build the layout ``name`` with its options (``--option NAME_KEY=VALUE`` for this
        layout, given as ``{"KEY": "VALUE"}``). ``ConfigError`` for an unknown name or an
        option the layout refuses; ``PluginError`` when its plugin fails otherwise."""
        found = self.layouts.get(name)
        if found is None:
            known = ", ".join(sorted(self.layouts)) or "none"
            raise ConfigError(f"unknown layout {name!r} (installed: {known})")
        try:
            layout = found.item.factory(dict(options))
        except GatewayError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {found.plugin!r} from package {found.package} failed to build the "
                f"layout {name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(layout, Layout):
            raise PluginError(
                f"plugin {found.plugin!r} from package {found.package} built no layout for "
                f"{name!r} (got {type(layout).__name__}, which has no scans method)"
            )
        return layout


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    *, extra: Sequence[tuple[str, object]] = (), use_entry_points: bool = True
) -> Plugins:
    """Load the built-in layouts, every entry-point plugin, and ``extra``.

    ``extra`` is the public way to use a plugin without installing it (tests, embedding):
    ``(name, plugin)`` pairs, where ``plugin`` is a module or any object with ``@hookimpl``
    functions, used exactly like an entry-point plugin of that name (an installed entry point
    of the same name, or the same object installed again, is skipped). ``use_entry_points=False``
    loads nothing but the built-in layouts and ``extra`` (``gateway.testing.plugins_with``).

    A plugin that cannot be imported or registered, or that implements a hook the contract
    does not declare (a misspelt name such as ``gateway_store_type``), is not used at all:
    it is recorded in ``Plugins.failures`` with its package and the reason, and logged.
    """
    pm = make_plugin_manager()
    result = Plugins(blocked=_blocked_names())
    packages: dict[str, str] = {}

    def register(name: str, plugin: object, package: str) -> None:
        try:
            pm.register(plugin, name=name)
            unknown = _unknown_hooks(pm, plugin)
            if unknown:
                pm.unregister(plugin, name=name)
                known = ", ".join(sorted(_HOOK_NAMES))
                raise PluginError(
                    f"unknown hook {' and '.join(map(repr, unknown))}: the gateway has no "
                    f"such hook (misspelt? the hooks are {known}); none of its hooks are used"
                )
        except Exception as exc:  # a broken plugin must not stop the others
            reason = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            result.failures.append(PluginFailure(name, package, reason))
            log.warning("plugin %r from package %s failed to load: %s", name, package, reason)
            return
        packages[name] = package

    pm.register(builtin_layouts, name="builtin-layouts")
    packages["builtin-layouts"] = CORE_PACKAGE
    for name, plugin in extra:
        register(name, plugin, getattr(plugin, "__name__", name))
    if use_entry_points:
        for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            package = ep.dist.name if ep.dist is not None else ep.value
            if ep.name in result.blocked:
                pm.set_blocked(ep.name)
                continue
            if pm.has_plugin(ep.name) or pm.is_blocked(ep.name) or _failed(result, ep.name):
                continue  # the same distribution seen twice on sys.path, or given as extra
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                reason = f"{type(exc).__name__}: {exc}"
                result.failures.append(PluginFailure(ep.name, package, reason))
                log.warning(
                    "plugin %r from package %s failed to load: %s", ep.name, package, reason
                )
                continue
            if pm.is_registered(plugin):
                continue  # already given as extra under another name
            register(ep.name, plugin, package)
    pm.check_pending()  # every plugin left implements declared hooks only

    for name, item in _collect(pm, pm.hook.gateway_store_types, packages):
        _claim(result.stores, item.scheme.lower(), Provided(item, name, packages[name]), "scheme")
    for name, item in _collect(pm, pm.hook.gateway_layouts, packages):
        _claim(result.layouts, item.name, Provided(item, name, packages[name]), "layout name")
    return result


_HOOK_NAMES = frozenset(
    name
    for name, value in vars(hookspecs).items()
    if getattr(value, f"{hookspecs.PROJECT}_spec", None) is not None
)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The hooks ``plugin`` implements that no spec declares (pluggy accepts them silently
    until ``check_pending``); hooks marked ``optionalhook=True`` are allowed."""
    unknown = []
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.has_spec():
            continue
        if any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls()):
            unknown.append(caller.name)
    return sorted(unknown)


def _failed(result: Plugins, name: str) -> bool:
    return any(f.plugin == name for f in result.failures)


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
