"""The plugin contract: the hooks a gateway plugin may implement, and nothing else.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named like the specs
below, published in the entry-point group ``gateway.plugins``::

    # pyproject.toml of a third-party package
    [project.entry-points."gateway.plugins"]
    zipstore = "gateway_zipstore"

    # gateway_zipstore/__init__.py
    from gateway.hookspecs import StoreType, hookimpl

    @hookimpl
    def gateway_store_types():
        return [StoreType(scheme="zip", factory=ZipStore.from_url, description="ZIP archives")]

This is version ``CONTRACT_VERSION`` of the plugin contract: store factories receive a parsed
``SourceURL`` (version 1 gave them the raw string and an option dictionary), layout factories
receive their options, and ``Store.open`` returns a closeable ``ByteStream``.

Each hook returns a list of frozen dataclasses that describe what the plugin adds. Names must be
unique across all installed plugins: two plugins claiming the same scheme or layout name stop
the gateway with an error naming both packages. See docs/plugins.md for the whole guide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pluggy

from gateway.layout import Layout
from gateway.sourceurl import SourceURL
from gateway.storage import Store

CONTRACT_VERSION = 2
"""Bumped when a change to the hooks, ``Store``, ``Layout`` or ``SourceURL`` breaks plugins."""
PROJECT = "gateway"
ENTRY_POINT_GROUP = "gateway.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

StoreFactory = Callable[[SourceURL], Store]
"""Builds a store from a source's URL (its fixed part, ``smb://host/share/dir?encrypt=1``),
parsed by the gateway, with the store options the user gave for this scheme. It must not touch
the network: the gateway calls ``Store.check()`` when it needs to know the store works. It
raises ``ConfigError`` for a URL or option it cannot use (never quoting a secret)."""

LayoutFactory = Callable[[Mapping[str, str]], Layout]
"""Builds a layout from its options: ``--option NAME_KEY=VALUE`` for the layout ``NAME``, given
as ``{"KEY": "VALUE"}``. Raises ``ConfigError`` for an option it does not know."""


@dataclass(frozen=True)
class StoreType:
    """A kind of storage, chosen by the URL scheme of a ``--path`` source."""

    scheme: str
    """URL scheme without the colon, lower case: ``file``, ``smb``, ``s3``."""
    factory: StoreFactory
    description: str
    aliases: Sequence[str] = ()
    """Other names accepted by ``--backend`` (``local`` for ``file``)."""


@dataclass(frozen=True)
class LayoutType:
    """A named way recordings are arranged below a source's root (``--layout NAME``)."""

    name: str
    factory: LayoutFactory
    description: str


@hookspec
def gateway_store_types() -> Sequence[StoreType]:
    """Return the store types this plugin adds (may be empty)."""
    raise NotImplementedError


@hookspec
def gateway_layouts() -> Sequence[LayoutType]:
    """Return the path layouts this plugin adds (may be empty)."""
    raise NotImplementedError
