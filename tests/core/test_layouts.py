"""Layouts and placeholder patterns narrow a search to the folders its window names."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.builtin_layouts import FLAT, FREEPBX, FUSIONPBX
from gateway.errors import ConfigError, UsageError
from gateway.layout import Layout, TenantFolders
from gateway.placeholders import PathPattern
from gateway.query import Query
from gateway.testing import LayoutContract, plugins_with

DAYS = [date(2026, 3, 8), date(2026, 3, 9)]


def prefixes(layout: PathPattern, query: Query, days: list[date]) -> list[str]:
    return [scan.prefix for scan in layout.scans(query, days)]


def test_placeholders_fill_from_each_day() -> None:
    pattern = PathPattern("%YY/%MM/%DD")
    assert prefixes(pattern, Query("1.1"), DAYS) == ["2026/03/08", "2026/03/09"]


def test_month_name_and_tenant_placeholders() -> None:
    pattern = PathPattern("%TE/archive/%YY/%ME/%DD")
    got = prefixes(pattern, Query("u1", tenant="pbx.example.com"), DAYS)
    assert got == ["pbx.example.com/archive/2026/Mar/08", "pbx.example.com/archive/2026/Mar/09"]


def test_month_only_pattern_lists_each_month_once() -> None:
    assert prefixes(PathPattern("rec-%YY-%MM"), Query("1.1"), DAYS) == ["rec-2026-03"]


def test_tenant_placeholder_without_tenant_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="tenant"):
        PathPattern("%TE/%YY").scans(Query("1.1"), DAYS)


@pytest.mark.parametrize("tenant", ["..", "a/b", "a\\b", "*", "%YY", "x\x00y", ""])
def test_tenants_that_would_change_the_path_are_refused(tenant: str) -> None:
    with pytest.raises(UsageError):
        Query("1.1", tenant=tenant)


def test_without_timestamp_the_fixed_part_is_scanned_with_a_key_filter() -> None:
    [scan] = PathPattern("%TE/archive/%YY/%ME/%DD").scans(Query("u1", tenant="t1"), [])
    assert scan.prefix == "t1/archive"
    assert scan.recursive
    assert scan.keys is not None
    assert scan.keys.fullmatch("t1/archive/2026/Mar/08/u.wav")
    assert not scan.keys.fullmatch("t1/archive/2026/03/08/u.wav")
    assert not scan.keys.fullmatch("t2/archive/2026/Mar/08/u.wav")


def test_freepbx_without_timestamp_only_counts_files_directly_in_day_folders() -> None:
    [scan] = FREEPBX.scans(Query("1.1"), [])
    assert scan.prefix == ""
    assert scan.keys is not None
    assert scan.keys.fullmatch("2026/03/08/q-1.1.wav")
    assert not scan.keys.fullmatch("2026/03/08/sub/q-1.1.wav")
    assert not scan.keys.fullmatch("misc/q-1.1.wav")


def test_freepbx_with_days_lists_only_those_day_folders_non_recursively() -> None:
    scans = FREEPBX.scans(Query("1.1"), DAYS)
    assert [(s.prefix, s.recursive) for s in scans] == [
        ("2026/03/08", False),
        ("2026/03/09", False),
    ]


def test_fusionpbx_without_tenant_searches_every_domain() -> None:
    assert prefixes(FUSIONPBX, Query("u1"), DAYS[:1]) == ["*/archive/2026/Mar/08"]


def test_flat_scans_everything() -> None:
    [scan] = FLAT.scans(Query("1.1"), DAYS)
    assert (scan.prefix, scan.recursive) == ("", True)


@pytest.mark.parametrize("name", ["flat", "freepbx", "fusionpbx"])
class TestBuiltinLayouts(LayoutContract):
    """The named layouts, built by their factories as ``--layout NAME`` builds them."""

    @pytest.fixture
    def contract_layout(self, name: str) -> Layout:
        return plugins_with().layout(name)


@pytest.mark.parametrize(
    "pattern",
    ["%TE/%YY/%MM/%DD", "%TE/%YY-%MM", "rec/%TE/archive/%YY/%ME/%DD", "%YY/%TE/%MM"],
)
class TestPlaceholderPatterns(LayoutContract):
    """Source paths with placeholders, the tenant (``%TE``) among them."""

    @pytest.fixture
    def contract_layout(self, pattern: str) -> Layout:
        return PathPattern(pattern)


def test_a_tenant_pattern_keeps_tenants_apart_and_the_others_do_not() -> None:
    assert isinstance(FUSIONPBX, TenantFolders)
    keys = FUSIONPBX.tenant_keys("t1.example.com")
    assert keys is not None
    assert keys.fullmatch("t1.example.com/archive/2026/Mar/09/u-1.wav")
    assert not keys.fullmatch("t1xexample.com/archive/2026/Mar/09/u-1.wav")
    assert FREEPBX.tenant_keys("t1.example.com") is None
    assert FLAT.tenant_keys("t1.example.com") is None


def test_builtin_layouts_take_no_options() -> None:
    plugins = plugins_with()
    assert plugins.layout("freepbx", {}) is FREEPBX
    with pytest.raises(ConfigError, match="no options"):
        plugins.layout("freepbx", {"depth": "3"})
