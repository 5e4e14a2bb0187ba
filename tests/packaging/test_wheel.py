"""The wheel an administrator installs on a PBX, without the repository.

A real build (``pip wheel --no-deps``) of a clean copy of the checkout, and a real install of
``WHEEL[all]`` from the package registry into a fresh virtual environment, the way README.md
("Installing on a PBX") says. Every command then runs from a folder outside the repository
with an environment stripped of what could let the checkout's editable install leak in
(``PYTHONPATH``, ``VIRTUAL_ENV``, the checkout's ``.venv/bin`` on ``PATH``), and the test
checks that the ``gateway`` it imports lives in the new environment.

Building and installing need the package registry (setuptools for the build, the
dependencies for the install; pip's cache makes it quick): without it these tests fail, they
do not skip, so that CI proves the wheel installs.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "gateway" / "deploy"

# Where each package of the wheel lives in the checkout (pyproject's package-dir).
PACKAGE_DIRS = {
    "gateway": ROOT / "gateway",
    "gateway_local": ROOT / "plugins" / "local" / "gateway_local",
    "gateway_smb": ROOT / "plugins" / "smb" / "gateway_smb",
    "gateway_s3": ROOT / "plugins" / "s3" / "gateway_s3",
}
CODE_PACKAGES = ("gateway", "gateway/cli", "gateway/web", *list(PACKAGE_DIRS)[1:])
DEPLOY_FILES = {
    "Caddyfile",
    "gateway.toml",
    "grafana-dashboard.json",
    "logrotate.conf",
    "recording-gateway.service",
    "recording-gateway@.service",
}

# What a clone does not have, or what the build must not see: left out of the copy.
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)

DEBIAN_PYTHON = "/usr/bin/python3"
REGISTRY_NEEDED = (
    "this test needs the package registry (PyPI or the index pip is configured with) and "
    "fails rather than skips without it, so that CI proves the wheel installs"
)

# What the installed venv's python reports about itself: where its modules come from (the
# SMB and S3 store modules import smbprotocol and boto3, so the [all] extra must be there)
# and the deployment files as `gateway setup` reads them.
INTROSPECT = """
import hashlib, importlib, importlib.resources, json
modules = ["gateway", "gateway.cli", "gateway.web", "gateway_local",
           "gateway_smb.store", "gateway_s3.store", "smbclient", "boto3"]
deploy = importlib.resources.files("gateway") / "deploy"
print(json.dumps({
    "modules": {name: importlib.import_module(name).__file__ for name in modules},
    "deploy": {entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()
               for entry in deploy.iterdir() if entry.is_file()},
}))
"""


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """This process's environment without what points Python at the checkout.

    Keeps pip's settings (index, certificates, proxies) so the registry is reached as on
    this machine; drops ``PYTHON*`` and ``VIRTUAL_ENV``, and the checkout's folders from
    ``PATH``; puts ``venv``'s ``bin`` first when given.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTHON") and key != "VIRTUAL_ENV"
    }
    path = [
        entry
        for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if entry and not Path(entry).resolve().is_relative_to(ROOT)
    ]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
    env["PATH"] = os.pathsep.join(path)
    env["TZ"] = "UTC"
    return env


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd``, which must lie outside the repository."""
    assert not cwd.resolve().is_relative_to(ROOT), f"{cwd} is inside the repository"
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def must_succeed(done: subprocess.CompletedProcess[str], what: str) -> None:
    """Fail the test with ``what`` and the command's output when it did not succeed."""
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {done.returncode}); {REGISTRY_NEEDED}.\n"
            f"command: {' '.join(done.args)}\nstdout:\n{done.stdout[-3000:]}\n"
            f"stderr:\n{done.stderr[-3000:]}",
            pytrace=False,
        )


@dataclass(frozen=True)
class InstalledVenv:
    """A fresh virtual environment holding the wheel and its ``[all]`` extra, as on a PBX."""

    root: Path

    def run(
        self, program: str, *args: str, cwd: Path, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``program`` from this venv's ``bin`` in ``cwd`` (outside the repository),
        with a clean environment (see ``clean_env``)."""
        argv = [str(self.root / "bin" / program), *args]
        return run(argv, cwd=cwd, env=clean_env(self.root), timeout=timeout)

    def gateway(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run this venv's ``gateway`` command."""
        return self.run("gateway", *args, cwd=cwd)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built by ``pip wheel --no-deps`` from a clean copy of the checkout.

    A copy, so that the build neither writes ``build/`` into the checkout nor picks up stale
    files a previous build left there.
    """
    work = tmp_path_factory.mktemp("wheel")
    source = work / "checkout"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_COPIED)
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(work / "dist"), "."]
    done = run(argv, cwd=source, env=clean_env(), timeout=240)
    must_succeed(done, "pip wheel --no-deps (it fetches setuptools to build)")
    built = list((work / "dist").glob("*.whl"))
    assert len(built) == 1, built
    return built[0]


@pytest.fixture(scope="module")
def pbx_folder() -> Iterator[Path]:
    """A folder every user may read, as /opt is on a PBX: the service user of a setup must
    be able to run what is installed there (pytest's own temporary folders are root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="gateway-pbx-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def venv(wheel: Path, pbx_folder: Path) -> InstalledVenv:
    """A new venv (``python -m venv``, of Debian's python3 when there is one, as on a PBX)
    with ``WHEEL[all]`` installed from the registry."""
    python = DEBIAN_PYTHON if Path(DEBIAN_PYTHON).exists() else sys.executable
    root = pbx_folder / "venv"
    made = run([python, "-m", "venv", str(root)], cwd=pbx_folder, env=clean_env(), timeout=120)
    assert made.returncode == 0, made.stderr
    installed = InstalledVenv(root)
    done = installed.run(
        "python", "-m", "pip", "install", f"{wheel}[all]", cwd=pbx_folder, timeout=240
    )
    must_succeed(done, f"pip install '{wheel.name}[all]' into a fresh venv")
    return installed


def test_wheel_holds_the_code_and_deployment_files_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        deploy = {
            name.removeprefix("gateway/deploy/"): archive.read(name)
            for name in names
            if name.startswith("gateway/deploy/")
        }
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"

    # Every module of the checkout's packages, so a subpackage missing from pyproject's
    # `packages` list (and so from the PBX) is caught here.
    modules = {
        f"{package}/{module.relative_to(folder).as_posix()}"
        for package, folder in PACKAGE_DIRS.items()
        for module in folder.rglob("*.py")
        if "__pycache__" not in module.parts
    }
    assert {name for name in names if name.endswith(".py")} == modules
    for package in CODE_PACKAGES:
        assert f"{package}/__init__.py" in names

    # The deployment files, byte for byte the checkout's (deploy/ is a symlink to them).
    assert set(deploy) >= DEPLOY_FILES
    assert deploy == {path.name: path.read_bytes() for path in DEPLOY.iterdir()}
    assert "gateway/py.typed" in names

    # Nothing else: no tests, bench, examples, plugins/ folders, bytecode or symlinks.
    assert {name.split("/")[0] for name in names} == {*PACKAGE_DIRS, dist_info}
    rest = names - modules - {f"gateway/deploy/{name}" for name in deploy} - {"gateway/py.typed"}
    assert all(name.startswith(dist_info + "/") for name in rest), sorted(rest)


def test_wheel_declares_the_command_the_builtin_stores_and_the_extras(wheel: Path) -> None:
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    with zipfile.ZipFile(wheel) as archive:
        entry_points_txt = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
    entry_points = configparser.ConfigParser()
    entry_points.optionxform = str  # type: ignore[assignment,method-assign]
    entry_points.read_string(entry_points_txt)

    assert dict(entry_points["console_scripts"]) == {"gateway": "gateway.cli:main"}
    assert dict(entry_points["gateway.plugins"]) == {
        "local": "gateway_local",
        "smb": "gateway_smb",
        "s3": "gateway_s3",
    }
    assert {"smb", "s3", "all"} <= set(metadata.get_all("Provides-Extra") or [])


def test_installed_gateway_comes_from_the_new_venv_with_its_deploy_files(
    venv: InstalledVenv, tmp_path: Path
) -> None:
    done = venv.run("python", "-c", INTROSPECT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    for name, file in report["modules"].items():
        assert Path(file).resolve().is_relative_to(venv.root.resolve()), (name, file)
    checkout = (ROOT / "deploy" / "Caddyfile").read_bytes()
    assert report["deploy"]["Caddyfile"] == hashlib.sha256(checkout).hexdigest()
    assert report["deploy"] == {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in DEPLOY.iterdir()
    }


def test_installed_gateway_lists_the_builtin_stores_and_layouts(
    venv: InstalledVenv, tmp_path: Path
) -> None:
    done = venv.gateway("plugins", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stores_part, layouts_part = done.stdout.split("Layouts:", 1)
    listed = re.compile(r"^\s+(\S+)\s+(\S+) \[([^\]]+)\]", re.M)

    stores = {(dist, plugin) for _, dist, plugin in listed.findall(stores_part)}
    # Only the wheel's own stores: the checkout's third-party example (zipstore) stays out.
    assert stores == {("recording-gateway", name) for name in ("local", "smb", "s3")}
    layouts = {name for name, _, _ in listed.findall(layouts_part)}
    assert layouts >= {"flat", "freepbx", "fusionpbx"}


def test_installed_gateway_finds_a_call_in_a_demo_archive(
    venv: InstalledVenv, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    made = venv.gateway(
        "demo", str(archive), "--end", "2026-03-09", "--timezone", "Europe/Rome", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr

    found = venv.gateway(
        "search",
        "--path",
        str(archive),
        "--layout",
        "freepbx",
        "--timezone",
        "Europe/Rome",
        "--callid",
        "1773050550.110",
        "--timestamp",
        "2026-03-09.11:02:30",
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    files = sorted(line.split("\t")[0] for line in found.stdout.splitlines())
    assert files == ["1773050550.110-in.wav", "1773050550.110-out.wav"]


def test_installed_gateway_sets_up_a_pbx_from_its_own_files(
    venv: InstalledVenv, tmp_path: Path
) -> None:
    """``gateway setup`` of the installed wheel: the unit runs that installation's gateway,
    and the Caddy site is the shipped Caddyfile (which travels in the wheel)."""
    archive = tmp_path / "archive"
    made = venv.gateway("demo", str(archive), "--end", "2026-03-09", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "root"
    done = venv.gateway(
        *("setup", "--root", str(root), "--public-url", "https://pbx.example.com"),
        *("--path", str(archive), "--timezone", "UTC"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Proposed layout: freepbx" in done.stdout
    unit = (root / "etc/systemd/system/recording-gateway.service").read_text()
    assert f"ExecStart={venv.root}/bin/gateway serve --config " in unit
    caddy = (root / "etc/caddy/Caddyfile").read_text()
    assert "https://pbx.example.com {" in caddy
    assert "reverse_proxy 127.0.0.1:4000 {" in caddy


def test_setup_on_the_pbx_itself_checks_as_the_service_user(
    venv: InstalledVenv, pbx_folder: Path, tmp_path: Path
) -> None:
    """``gateway setup`` without --root, in a private mount namespace whose /etc is a copy of
    this machine's: it creates the service user, gives it the token, and runs ``gateway
    check`` as that user, who can read the installation and the recordings."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private /etc")
    archive = pbx_folder / "monitor"
    made = venv.gateway("demo", str(archive), "--end", "2026-03-09", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    etc = tmp_path / "etc"
    shutil.copytree("/etc", etc, symlinks=True)
    command = [str(venv.root / "bin" / "gateway"), "setup", "--public-url", "https://pbx.test"]
    command += ["--path", str(archive), "--timezone", "UTC", "--bind-to", "127.0.0.1:4999"]
    private_etc = 'mount --bind "$1" /etc && shift && exec "$@"'
    done = run(
        ["unshare", "--mount", "sh", "-c", private_etc, "sh", str(etc), *command],
        cwd=tmp_path,
        env=clean_env(venv.root),
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "$ runuser -u recording-gateway -- gateway check" in done.stdout
    assert "gateway: configuration OK" in done.stdout
    users = {line.split(":")[0]: line for line in (etc / "passwd").read_text().splitlines()}
    assert users["recording-gateway"].endswith(":/nonexistent:/usr/sbin/nologin")
    groups = {line.split(":")[0]: line for line in (etc / "group").read_text().splitlines()}
    gid = int(groups["recording-gateway"].split(":")[2])
    token = etc / "recording-gateway" / "token"
    info = token.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, gid, 0o640)
    (printed,) = re.findall(r"^audio\.jsonlistener\.searchtoken=(.+)$", done.stdout, re.M)
    assert token.read_text().strip() == printed
    unit = (etc / "systemd" / "system" / "recording-gateway.service").read_text()
    assert f"ExecStart={venv.root}/bin/gateway serve --config " in unit
    assert not Path("/etc/recording-gateway").exists()  # the machine's own /etc is untouched


def test_print_works_for_a_user_who_may_not_read_the_secrets(
    venv: InstalledVenv, pbx_folder: Path, tmp_path: Path
) -> None:
    """An administrator reviews with --print before running setup as root: the files written
    before that they may not read are said to be there, not read."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as another user")
    archive = pbx_folder / "print-monitor"
    assert venv.gateway("demo", str(archive), "--end", "2026-03-09", cwd=tmp_path).returncode == 0
    root = pbx_folder / "print-root"
    command = ["setup", "--root", str(root), "--public-url", "https://pbx.test"]
    command += ["--path", str(archive), "--timezone", "UTC"]
    assert venv.gateway(*command, cwd=tmp_path).returncode == 0
    (root / "etc" / "recording-gateway").chmod(0o750)  # as deployment.md does by hand
    done = run(
        ["runuser", "-u", "nobody", "--", str(venv.root / "bin" / "gateway"), *command, "--print"],
        cwd=tmp_path,
        env=clean_env(venv.root),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "/etc/recording-gateway/token  (0600, search token): exists, not readable" in done.stdout
    assert "/etc/caddy/Caddyfile  (0644, Caddy site): unchanged" in done.stdout
