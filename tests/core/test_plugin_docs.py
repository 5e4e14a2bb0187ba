"""Meta-tests: every hook is documented and tested, and the plugin guide's examples run."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway import hookspecs
from gateway.hookspecs import LayoutType, StoreType

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs/plugins.md").read_text()
HOOKS = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
         if name.startswith("gateway_")]  # fmt: skip


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE, re.S)


def test_there_are_hooks() -> None:
    assert set(HOOKS) >= {"gateway_store_types", "gateway_layouts"}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_the_guide(hook: str) -> None:
    assert f"### `{hook}(" in GUIDE


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring_spec(hook: str) -> None:
    assert (getattr(hookspecs, hook).__doc__ or "").strip()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook: str) -> None:
    own = Path(__file__).resolve()
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.resolve() != own]
    assert any(hook in p.read_text() for p in tests), f"no test implements {hook}"


def test_the_entry_point_group_in_the_guide_is_the_real_one() -> None:
    [toml] = blocks("toml")
    group = next(iter(tomllib.loads(toml)["project"]["entry-points"]))
    assert group == hookspecs.ENTRY_POINT_GROUP


def test_hook_examples_run_and_return_what_they_promise() -> None:
    examples = [b for b in blocks("python") if "@hookimpl" in b]
    assert len(examples) == len(HOOKS)
    for source in examples:
        namespace: dict[str, object] = {}
        exec(compile(source, "docs/plugins.md", "exec"), namespace)  # noqa: S102
        for hook in HOOKS:
            impl = namespace.get(hook)
            if callable(impl):
                items = impl()
                assert items
                assert all(isinstance(i, StoreType | LayoutType) for i in items)


def test_the_contract_suite_example_passes(tmp_path: Path) -> None:
    [example] = [b for b in blocks("python") if "StoreContract" in b]
    (tmp_path / "test_guide_example.py").write_text(example)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
