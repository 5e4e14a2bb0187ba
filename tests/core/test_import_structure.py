"""The layers point one way: no import cycle in ``gateway/`` or the plugins, and the command
line never loads the web framework unless it serves, nor a store's SDK it does not use."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "gateway": ROOT / "gateway",
    "gateway_local": ROOT / "plugins/local/gateway_local",
    "gateway_smb": ROOT / "plugins/smb/gateway_smb",
    "gateway_s3": ROOT / "plugins/s3/gateway_s3",
}
WEB_STACK = ("falcon", "waitress", "prometheus_client")
# What a search of a local folder never needs: the other stores' SDKs, the web stack, and the
# cryptography that only signs links. Each costs tens of milliseconds of start-up when imported,
# and the whole command should take a fraction of a `find` (bench/cli.py).
NOT_FOR_A_LOCAL_SEARCH = (
    *WEB_STACK,
    "boto3",
    "botocore",
    "s3transfer",
    "smbprotocol",
    "smbclient",
    "spnego",
    "cryptography",
    "urllib3",  # only federation asks other gateways over HTTP
)
# Runs the real command line, then lists every module the process loaded (atexit: after click
# has called sys.exit) in the file named by the first argument.
RUN_AND_LIST_MODULES = """
import atexit, sys
target, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(target, "w").write("\\n".join(sorted(sys.modules))))
from gateway.cli import main
main(args, prog_name="gateway")
"""


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def module_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``name`` imports when it is loaded (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in known else base)
            elif isinstance(node, ast.If) and not _is_type_checking(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(tree.body)
    return {t for t in targets if t in known and t != name}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: module_level_imports(path, name, known) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_walker_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_walker_reads_this_project() -> None:
    edges = graph()
    assert "gateway.cli.find" in edges["gateway.cli.main"]
    assert "gateway.source" in edges["gateway.search"]


def test_no_import_cycle_in_gateway_or_the_plugins() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_command_line_reaches_no_web_module() -> None:
    edges = graph()
    seen: set[str] = set()
    pending = ["gateway.cli"]
    while pending:
        node = pending.pop()
        if node not in seen:
            seen.add(node)
            pending.extend(edges[node])
    assert not {m for m in seen if m.startswith("gateway.web")}


def test_importing_the_command_line_loads_no_web_framework() -> None:
    code = "import sys, gateway.cli; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in WEB_STACK]


def test_a_local_search_loads_no_other_store_sdk_and_no_web_stack(tmp_path: Path) -> None:
    """The whole ``gateway search`` process, with every plugin discovered and registered (the
    S3 and SMB schemes too), loads none of ``NOT_FOR_A_LOCAL_SEARCH``."""
    key = "2026/03/09/in-200-100-20260309-120000-1773057600.7.wav"
    write(tmp_path / "rec" / key)
    listing = tmp_path / "modules.txt"
    args = ["search", "--path", str(tmp_path / "rec"), "--layout", "freepbx", "--timezone",
            "UTC", "--callid", "1773057600.7", "--timestamp", "1773057600"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, str(listing), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GATEWAY_BLOCK_PLUGINS": ""},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert key in done.stdout  # it did search, and found the call
    loaded = listing.read_text().split()
    assert {"gateway_local", "gateway_smb", "gateway_s3"} <= set(loaded)  # all plugins loaded
    assert not [m for m in loaded if m.split(".")[0] in NOT_FOR_A_LOCAL_SEARCH]
