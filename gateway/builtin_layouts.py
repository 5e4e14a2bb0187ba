"""The built-in layouts, registered through the same hook a plugin uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.errors import ConfigError
from gateway.hookspecs import LayoutFactory, LayoutType, hookimpl
from gateway.layout import Layout
from gateway.placeholders import PathPattern

FLAT = PathPattern("")
FREEPBX = PathPattern("%YY/%MM/%DD", recursive=False)
FUSIONPBX = PathPattern("%TE/archive/%YY/%ME/%DD", recursive=False, tenant_optional=True)


def _fixed(layout: Layout) -> LayoutFactory:
    """A factory for a layout that takes no options."""

    def factory(options: Mapping[str, str]) -> Layout:
        if options:
            raise ConfigError(f"this layout takes no options (given: {', '.join(sorted(options))})")
        return layout

    return factory


@hookimpl
def gateway_layouts() -> Sequence[LayoutType]:
    return [
        LayoutType("flat", _fixed(FLAT), "every folder below the root, recursively (default)"),
        LayoutType(
            "freepbx",
            _fixed(FREEPBX),
            "FreePBX/Issabel: YYYY/MM/DD/<type>-<to>-<from>-<date>-<time>-<uniqueid>.<ext>",
        ),
        LayoutType(
            "fusionpbx",
            _fixed(FUSIONPBX),
            "FusionPBX/FreeSWITCH: <domain>/archive/YYYY/Mon/DD/<uuid>.<ext>; "
            "the tenant is the domain",
        ),
    ]
