"""The plugin host, with real distributions found through their entry points."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

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
from gateway.layouts import PathPattern

@hookimpl
def gateway_layouts():
    return [LayoutType("{name}", lambda: PathPattern("%YY-%MM-%DD"), "one folder per day")]
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
