"""The dial verbs: how ``connect`` went, ``disconnect`` and ``forget``; the dials in ``status``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mesh.runtime.home import Home
from tui.verbs import PROG, client

#: how long ``meshnotes connect`` waits for the dial to link or fail, by default
CONNECT_WAIT = 5.0


def report_dial(result: dict[str, Any], wait: float) -> int:
    """Say how a dial went (linked, or the failure in words): 0 if linked, else 1."""
    dial = result.get("dial")
    if dial is None:  # --wait 0, or a dial that was already held off
        print(f"dialing {result['dialing']}")
        return 0
    if dial["state"] == "linked":
        print(f"linked to {dial['peer_id']} at {dial['address']}")
        return 0
    still = f"still dialing; {PROG} forget {dial['address']} stops it"
    if dial["last_error"]:
        if dial["state"] == "given up":
            still = "gave up"
        print(f"{PROG}: {dial['address']}: {dial['last_error']} ({still})", file=sys.stderr)
    else:
        print(
            f"{PROG}: {dial['address']}: not linked within {wait:g} s ({still})",
            file=sys.stderr,
        )
    return 1


def dial_lines(dials: list[dict[str, Any]]) -> list[str]:
    """The dials as plain ``status`` shows them, one line each."""
    lines = [f"dials  {len(dials)}"]
    for dial in dials:
        line = f"  {dial['state']:<10} {dial['address']}  attempts {dial['attempts']}"
        if dial["last_error"]:
            line += f"  last: {dial['last_error']}"
        if dial["next_try_in"] is not None:
            line += f"  next try in {dial['next_try_in']:g} s"
        lines.append(line)
    return lines


def cmd_disconnect(args: argparse.Namespace, home: Home) -> int:
    result = client(home).disconnect(args.peer)
    links = "1 link" if result["closed"] == 1 else f"{result['closed']} links"
    minutes = result["hold_s"] / 60
    print(
        f"closed {links} with {result['peer_id']}; not redialing it for {minutes:g} min"
        f" (or until {PROG} connect)"
    )
    return 0


def cmd_forget(args: argparse.Namespace, home: Home) -> int:
    result = client(home).forget(args.address)
    print(f"stopped dialing {result['forgot']}")
    return 0
