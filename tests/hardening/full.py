"""The full fault runs: `python -m tests.hardening.full [--cases N]`.

Runs the long fuzz (every decoder, `--cases` each, default 100,000) and then
tests/hardening with MESHNOTES_FULL_FAULTS=1 (5,000 half-open sockets, 10,000
flooding identities, 1,000 DMs across a relay killed with -9, 20 kill -9
rounds during heavy writes), and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hardening.full", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000, help="fuzz cases per decoder")
    parser.add_argument("--skip-fuzz", action="store_true", help="only the fault tests")
    args = parser.parse_args(argv)
    status = 0
    if not args.skip_fuzz:
        print(f"== fuzz: {args.cases} cases per decoder", flush=True)
        status |= subprocess.call(
            [sys.executable, "-m", "tests.hardening.fuzz", "--cases", str(args.cases)]
        )
    print("== fault tests, full size (MESHNOTES_FULL_FAULTS=1)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.json"
        env = {**os.environ, "MESHNOTES_FULL_FAULTS": "1", "MESHNOTES_FIGURES": str(figures)}
        status |= subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/hardening",
                "-q",
                "-s",
                "-p",
                "no:cacheprovider",
                "--timeout",
                "3600",
                "-k",
                "not test_decoder",
            ],
            env=env,
        )
        if figures.exists():
            print("== figures")
            for name, value in json.loads(figures.read_text()).items():
                print(f"{name:<14} {json.dumps(value)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
