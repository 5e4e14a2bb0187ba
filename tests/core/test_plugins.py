"""The plugin host, with real distributions found through their entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from gateway.errors import ConfigError, PluginError
from gateway.hookspecs import LayoutType, StoreType, hookimpl
from gateway.layout import Layout
from gateway.placeholders import PathPattern
from gateway.plugins import load_plugins
from gateway.testing import plugins_with
from gateway_local import LocalStore
from tests.conftest import run_gateway, write

STORE_PLUGIN = """
from gateway.hookspecs import StoreType, hookimpl
from gateway_local import LocalStore

@hookimpl
def gateway_store_types():
    return [StoreType("{scheme}", LocalStore.from_url, "a copy of the local store")]
"""

LAYOUT_PLUGIN = """
from gateway.hookspecs import LayoutType, hookimpl
from gateway.placeholders import PathPattern

@hookimpl
def gateway_layouts():
    return [LayoutType("{name}", lambda options: PathPattern("%YY-%MM-%DD"), "one folder per day")]
"""


def install(site: Path, package: str, module: str, source: str) -> None:
    """Install a tiny distribution the way pip leaves it: a module and its dist-info."""
    write(site / f"{module}.py", textwrap.dedent(source).encode())
    info = site / f"{package.replace('-', '_')}-1.0.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n".encode())
    write(info / "entry_points.txt", f"[gateway.plugins]\n{module} = {module}\n".encode())


def gateway_with(site: Path, *args: str, **env: str) -> tuple[int, str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    done = run_gateway(*args, env={"PYTHONPATH": pythonpath, **env})
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_builtin_stores_and_layouts_are_listed_with_their_package() -> None:
    done = run_gateway("plugins")
    out = done.stdout.decode()
    assert done.returncode == 0
    assert "file" in out
    assert "recording-gateway [local]" in out
    for layout in ("flat", "freepbx", "fusionpbx"):
        assert f"  {layout} " in out


def test_a_third_party_layout_is_used_by_search(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "acme-layouts", "acme_daily", LAYOUT_PLUGIN.format(name="daily"))
    write(tmp_path / "rec/2026-03-09/q-1700000000.7.wav")
    write(tmp_path / "rec/2026-03-10/q-1700000000.7.wav")
    code, out, err = gateway_with(
        site, "search", "--path", str(tmp_path / "rec"), "--layout", "daily",
        "--callid", "1700000000.7", "--timestamp", "2026-03-09T12:00:00Z",
    )  # fmt: skip
    assert code == 0, err
    assert "2026-03-09/q-1700000000.7.wav" in out
    assert "2026-03-10" not in out
    code, out, _ = gateway_with(site, "plugins")
    assert "daily" in out
    assert "acme-layouts [acme_daily]" in out


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_work(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "broken-store", "broken_store", "import no_such_module_anywhere\n")
    code, out, err = gateway_with(site, "plugins")
    assert code == 0
    assert "broken-store" in out
    assert "ModuleNotFoundError" in out
    assert "file" in out  # the built-in store still loads
    write(tmp_path / "rec/1700000000.8.wav")
    code, out, err = gateway_with(
        site, "search", "--path", str(tmp_path / "rec"), "--callid", "1700000000.8"
    )
    assert code == 0
    assert "broken-store" in err  # a warning names the package


def test_two_plugins_claiming_one_scheme_is_an_error_naming_both(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "store-one", "store_one", STORE_PLUGIN.format(scheme="nas"))
    install(site, "store-two", "store_two", STORE_PLUGIN.format(scheme="nas"))
    code, _, err = gateway_with(site, "plugins")
    assert code == 2
    assert "'nas'" in err
    assert "store-one" in err
    assert "store-two" in err
    assert "Traceback" not in err


def test_a_plugin_claiming_a_builtin_layout_name_is_an_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "evil-layouts", "evil_layouts", LAYOUT_PLUGIN.format(name="freepbx"))
    code, _, err = gateway_with(site, "plugins")
    assert code == 2
    assert "evil-layouts" in err
    assert "recording-gateway" in err


def test_a_blocked_plugin_is_not_loaded(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "store-one", "store_one", STORE_PLUGIN.format(scheme="nas"))
    install(site, "store-two", "store_two", STORE_PLUGIN.format(scheme="nas"))
    code, out, err = gateway_with(site, "plugins", GATEWAY_BLOCK_PLUGINS="store_two")
    assert code == 0, err
    assert "store-one" in out
    assert "Blocked: store_two" in out


@pytest.mark.parametrize("scheme", ["nas"])
def test_a_third_party_store_serves_a_search(tmp_path: Path, scheme: str) -> None:
    site = tmp_path / "site"
    install(site, "store-one", "store_one", STORE_PLUGIN.format(scheme=scheme))
    write(tmp_path / "rec/1700000000.9.wav")
    code, out, err = gateway_with(
        site, "search", "--path", f"{scheme}:{tmp_path / 'rec'}", "--callid", "1700000000.9"
    )
    assert code == 0, err
    assert "1700000000.9.wav" in out


MISNAMED_PLUGIN = """
from gateway.hookspecs import LayoutType, StoreType, hookimpl
from gateway.placeholders import PathPattern
from gateway_local import LocalStore

@hookimpl
def gateway_store_type():  # misspelt: the hook is gateway_store_types
    return [StoreType("nas", LocalStore.from_url, "never used")]

@hookimpl
def gateway_layouts():
    return [LayoutType("misnamed-daily", lambda options: PathPattern("%YY"), "never used")]
"""


def plugin_module(name: str, **hooks: Callable[..., object]) -> types.ModuleType:
    """A plugin module made in the test: each keyword becomes a ``@hookimpl`` function."""
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        function.__name__ = hook
        setattr(module, hook, hookimpl(function))
    return module


def daily(options: Mapping[str, str]) -> Layout:
    unknown = set(options) - {"PATTERN"}
    if unknown:
        raise ConfigError(f"the daily layout has no option {', '.join(sorted(unknown))}")
    return PathPattern(options.get("PATTERN", "%YY-%MM-%DD"))


DAILY = plugin_module(
    "acme_daily", gateway_layouts=lambda: [LayoutType("daily", daily, "one folder per day")]
)


def test_a_misnamed_hook_is_a_failure_and_none_of_its_hooks_are_used() -> None:
    misnamed = plugin_module(
        "acme_misnamed",
        gateway_store_type=lambda: [StoreType("nas", LocalStore.from_url, "never used")],
        gateway_layouts=lambda: [LayoutType("misnamed", daily, "never used")],
    )
    plugins = load_plugins(extra=[("misnamed", misnamed)], use_entry_points=False)
    [failure] = plugins.failures
    assert (failure.plugin, failure.package) == ("misnamed", "acme_misnamed")
    assert "unknown hook 'gateway_store_type'" in failure.error
    assert "gateway_store_types" in failure.error  # the hook it probably meant
    assert "nas" not in plugins.stores
    assert "misnamed" not in plugins.layouts  # its correctly named hook is not used either
    assert set(plugins.layouts) == {"flat", "freepbx", "fusionpbx"}  # the others still load


def test_a_hook_marked_optional_may_be_one_the_gateway_does_not_have() -> None:
    module = types.ModuleType("acme_future")
    module.gateway_future_hook = hookimpl(optionalhook=True)(lambda: [])  # type: ignore[attr-defined]
    assert plugins_with(module).failures == []


def test_a_hook_with_parameters_the_spec_lacks_is_a_failure() -> None:
    def gateway_layouts(config):  # type: ignore[no-untyped-def]
        return []

    module = types.ModuleType("acme_params")
    module.gateway_layouts = hookimpl(gateway_layouts)  # type: ignore[attr-defined]
    [failure] = load_plugins(extra=[("params", module)], use_entry_points=False).failures
    assert failure.plugin == "params"
    assert "config" in failure.error


def test_plugins_with_loads_a_plugin_without_an_entry_point_and_raises_on_a_broken_one() -> None:
    plugins = plugins_with(DAILY)
    assert plugins.layouts["daily"].package == "acme_daily"
    assert "file" not in plugins.stores  # no entry points: only the built-in layouts and DAILY
    misnamed = plugin_module("acme_misnamed", gateway_layout=lambda: [])
    with pytest.raises(PluginError, match="unknown hook 'gateway_layout'"):
        plugins_with(misnamed)


def test_load_plugins_extra_is_used_like_an_installed_plugin() -> None:
    plugins = load_plugins(extra=[("daily", DAILY)])
    assert plugins.layouts["daily"].plugin == "daily"
    assert "file" in plugins.stores  # the installed plugins too


def test_layout_options_reach_the_factory() -> None:
    plugins = plugins_with(DAILY)
    layout = plugins.layout("daily", {"PATTERN": "%YY/%MM"})
    assert isinstance(layout, PathPattern)
    assert layout.pattern == "%YY/%MM"
    assert plugins.layout("daily").pattern == "%YY-%MM-%DD"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="no option DEPTH"):
        plugins.layout("daily", {"DEPTH": "2"})
    with pytest.raises(ConfigError, match=r"unknown layout 'weekly'.*daily"):
        plugins.layout("weekly")


def test_a_layout_factory_that_breaks_is_a_plugin_error_naming_it() -> None:
    def broken(options: Mapping[str, str]) -> Layout:
        raise KeyError("PATTERN")

    plugins = plugins_with(
        plugin_module(
            "acme_broken",
            gateway_layouts=lambda: [
                LayoutType("broken", broken, "raises"),
                LayoutType("nothing", lambda options: object(), "no layout"),  # type: ignore[arg-type, return-value]
            ],
        )
    )
    with pytest.raises(PluginError, match=r"acme_broken.*KeyError"):
        plugins.layout("broken")
    with pytest.raises(PluginError, match="built no layout"):
        plugins.layout("nothing")


def test_gateway_plugins_shows_a_misnamed_hook_as_failed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "misnamed-store", "misnamed_store", MISNAMED_PLUGIN)
    command = Path(sys.executable).with_name("gateway")  # the installed console script
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [str(command), "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )
    assert done.returncode == 0, done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("Failed:")]
    assert len(failed) == 1, done.stdout
    assert "misnamed_store from misnamed-store" in failed[0]
    assert "unknown hook 'gateway_store_type'" in failed[0]
    assert "nas" not in done.stdout.replace(failed[0], "")  # its store is not offered
    assert "misnamed-daily" not in done.stdout  # nor its correctly named layout
    assert "  file " in done.stdout  # the other plugins work
