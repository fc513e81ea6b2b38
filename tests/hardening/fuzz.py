"""Fuzz every decoder a hostile peer or a local client can reach; `python -m tests.hardening.fuzz`.

Each :class:`Target` wraps one decoder as the product calls it (the same
handler, the same catch list) and checks the hardening property for every
case: no exception escapes except the documented ones, nothing hangs (each
case must finish within `CASE_LIMIT` seconds), and what is not accepted is
dropped with a counted reason. Inputs come from a seeded ``random.Random``:
raw bytes, random msgpack/JSON structures shaped like the real message, and
mutations (bit flips, cuts, splices) of valid messages.

The targets are in fuzz_mesh.py (what a peer sends the mesh), fuzz_chat.py (the chat
and notes layers) and fuzz_local.py (local clients), on the base in fuzzing.py.
The runner (``python -m tests.hardening.fuzz --cases 100000``) drives every
target with that many cases and prints the figures; the CI tests
(tests/hardening/test_fuzz.py) drive the same targets from hypothesis with a
few hundred cases each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hardening.fuzz_chat import (
    BundlePayload,
    ChatPayload,
    ControlPayload,
    NotePayload,
    ReceiptPayload,
)
from tests.hardening.fuzz_local import BridgeMessage, ControlRequest, ControlSocket
from tests.hardening.fuzz_mesh import (
    AddressRecord,
    EnvelopeDecode,
    HandshakeBytes,
    Inventory,
    Table,
    Withdraw,
)
from tests.hardening.fuzzing import Target

TARGETS: list[Callable[[], Target]] = [
    EnvelopeDecode,
    HandshakeBytes,
    Inventory,
    AddressRecord,
    Withdraw,
    Table,
    ChatPayload,
    BundlePayload,
    ControlPayload,
    ReceiptPayload,
    NotePayload,
    ControlRequest,
    ControlSocket,
    BridgeMessage,
]


def run(cases: int, seed: int, only: list[str] | None = None, out: Any = None) -> dict[str, Any]:
    """Run every target (or `only` these) with `cases` cases each; print and return the figures."""
    out = out or sys.stdout
    figures: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    try:
        for factory in TARGETS:
            target = factory()
            if only and target.name not in only:
                continue
            rng = random.Random(f"{seed}:{target.name}")
            target.setup(loop)
            started = time.monotonic()
            try:
                for i in range(cases):
                    case = target.generate(rng)
                    try:
                        target.run_case(loop, case)
                    except BaseException as exc:
                        print(f"{target.name}: case {i} failed on {case!r:.300}", file=out)
                        raise exc
            finally:
                target.teardown(loop)
            took = time.monotonic() - started
            figures[target.name] = {
                "cases": cases,
                "seconds": round(took, 1),
                "outcomes": dict(sorted(target.outcomes.items())),
            }
            top = ", ".join(
                f"{k}={v}" for k, v in sorted(target.outcomes.items(), key=lambda kv: -kv[1])[:4]
            )
            print(f"{target.name:<16} {cases:>8} cases  {took:7.1f} s  {top}", file=out, flush=True)
    finally:
        loop.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hardening.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=1000, help="cases per decoder (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--only", action="append", help="run only this target (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    figures = run(args.cases, args.seed, args.only)
    total = sum(f["cases"] for f in figures.values())
    print(f"total            {total:>8} cases over {len(figures)} decoders, no finding")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
