"""The whole `gateway search` process, start-up included, against `find` on the same tree.

Run by hand: ``.venv/bin/python bench/cli.py [--root DIR] [--repeat N] [--flat-repeat N]``
after ``bench/search.py`` has generated its archive (1,000,000 empty files, FreePBX layout).

Each round runs, in a rotating order, ``python -c pass`` (the interpreter's own start-up, for
reference), the narrowed ``gateway search`` (``--layout freepbx`` and the call's
``--timestamp``), and ``find ROOT -name '*ID*'``; ``--flat-repeat`` rounds also run the flat
full-scan search (no layout, no timestamp). Every search must print the call's file. The
ratios are taken round by round (a search over the ``find`` of the same round), so they hold
while the machine's speed drifts; printed are the median wall time, the median CPU time (user
plus system, less disturbed by other work on the machine), the median ratio of wall times with
its spread, and the median ratio of CPU times (steadier when other work shares the machine, as
wall times then depend on the scheduler; the goal itself is the wall-time ratio).

Bytecode: the gateway is usually installed editable here, and ``PYTHONDONTWRITEBYTECODE`` may
be set, so its own modules would be compiled from source on every run; an installed gateway
(pip compiles bytecode when it installs) never pays that. The script therefore compiles the
project's modules once before timing; ``--no-compile`` skips that, to see what a fresh
checkout pays.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PACKAGES = ("gateway", "gateway_local", "gateway_smb", "gateway_s3")


@dataclass
class Timings:
    """One command's runs: wall and CPU seconds, and their ratios to the same round's ``find``."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    cpu_ratio: list[float] = field(default_factory=list)


def run(command: list[str], expect: str | None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one whole process; checks its output."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - t0
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0 or (expect is not None and expect not in text):
        raise SystemExit(f"{command} failed (status {process.returncode}):\n{text}")
    return wall, usage.ru_utime + usage.ru_stime


def compile_project() -> None:
    """Write the bytecode an installed gateway would have (see the module docstring)."""
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                compileall.compile_dir(folder, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("/tmp/gateway-bench-archive"))
    parser.add_argument("--repeat", type=int, default=9, help="rounds (default 9)")
    parser.add_argument(
        "--flat-repeat", type=int, default=3, help="rounds that also run the flat full scan"
    )
    parser.add_argument(
        "--gateway",
        default=str(Path(sys.executable).with_name("gateway")),
        help="the gateway command (default: the one next to this Python)",
    )
    parser.add_argument("--no-compile", action="store_true", help="do not write bytecode first")
    args = parser.parse_args()
    if not any(args.root.glob(".complete-*")):
        raise SystemExit(f"no archive in {args.root}: run bench/search.py first")
    if not args.no_compile:
        compile_project()

    # a call in the middle of the year (the first file of 2 July)
    target = min(os.listdir(args.root / "2025/07/02"))
    callid = target.rsplit("-", 1)[1].removesuffix(".wav")
    epoch = callid.split(".")[0]
    search = [args.gateway, "search", "--path", str(args.root), "--timezone", "UTC"]
    commands: dict[str, tuple[list[str], str | None]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "gateway search, narrowed": (
            [*search, "--layout", "freepbx", "--callid", callid, "--timestamp", epoch],
            target,
        ),
        "gateway search, flat scan": ([*search, "--callid", callid], target),
        "find -name '*ID*'": (["find", str(args.root), "-name", f"*{callid}*"], target),
    }
    flat = "gateway search, flat scan"
    for command, expect in commands.values():
        run(command, expect)  # warm-up: the file system's caches, the bytecode
    timings = {label: Timings() for label in commands}
    for round_ in range(args.repeat):
        labels = [k for k in commands if k != flat or round_ < args.flat_repeat]
        labels = labels[round_ % len(labels) :] + labels[: round_ % len(labels)]
        results = {label: run(*commands[label]) for label in labels}
        find_wall, find_cpu = results["find -name '*ID*'"]
        for label, (wall, cpu) in results.items():
            timings[label].wall.append(wall)
            timings[label].cpu.append(cpu)
            timings[label].ratio.append(wall / find_wall)
            timings[label].cpu_ratio.append(cpu / find_cpu)

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    print(f"archive: {args.root}, call {callid}; {args.repeat} rounds; {started}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"bytecode compiled first: {'no' if args.no_compile else 'yes'}")
    print(
        f"{'command':<28}{'runs':>5}{'wall ms':>10}{'cpu ms':>9}"
        f"{'wall vs find (min-max)':>26}{'cpu vs find':>13}"
    )
    for label, t in timings.items():
        spread = f"{statistics.median(t.ratio):.3f} ({min(t.ratio):.3f}-{max(t.ratio):.3f})"
        print(
            f"{label:<28}{len(t.wall):>5}{statistics.median(t.wall) * 1000:>10.1f}"
            f"{statistics.median(t.cpu) * 1000:>9.1f}{spread:>26}"
            f"{statistics.median(t.cpu_ratio):>13.3f}"
        )


if __name__ == "__main__":
    main()
