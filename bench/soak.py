"""Soak: 64 clients for two minutes against one real gateway over a local archive, a real smbd
and a real SeaweedFS, with smbd and then SeaweedFS killed and restarted on the way.

Run by hand: ``.venv/bin/python bench/soak.py [--seconds 120] [--clients 64] [--no-faults]
[--json FILE]``. Everything runs on loopback, on free ports, in a temporary folder. The
machinery (and the rules a run must keep) is in ``tests/proof/soak.py``; ``tests/proof/
test_soak.py`` runs a shorter soak in CI. Prints request counts, latency percentiles, the
fault windows, the gateway's resident memory over time and any broken rule; exits 1 when a
rule was broken. Figures of a run are in docs/performance.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for tests.*

import argparse
import json
import tempfile

from tests.proof.soak import Soak, iter_lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--no-faults", action="store_true", help="Keep every server up.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Set this in the gateway's environment (repeatable), to compare settings.",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 5 <= args.seconds <= 3600:
        parser.error("--clients 1..256, --seconds 5..3600")
    if not all("=" in item for item in args.env):
        parser.error("--env NAME=VALUE")
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="gateway-soak-") as tmp:
        soak = Soak(Path(tmp), clients=args.clients, duration=args.seconds,
                    faults=not args.no_faults, env=env)  # fmt: skip
        soak.run()
        report = soak.report()
        early, late = soak.rss_growth()
        report["rss_peak_warmup_mib"], report["rss_peak_after_mib"] = (
            round(early, 1),
            round(late, 1),
        )
        problems = soak.problems()
        report["problems"] = problems
    for line in iter_lines(report):
        print(line)
    print(f"  RSS peak MiB after a 40% warm-up: {early:.1f}, then {late:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
