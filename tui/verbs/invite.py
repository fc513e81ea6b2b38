"""The invite verbs: ``invite``, and an invite code given to ``connect`` or ``contacts add``.

The running node makes and signs the code (it holds the identity) and accepts
one (it dials); the code is checked here first too, so a corrupt, altered or
expired code is one clear line even with no node running.
"""

from __future__ import annotations

import argparse
import datetime
import time

from mesh.runtime.home import Home
from mesh.wire.invite import Invite
from tui.qr import qr_text
from tui.verbs import client, print_json


def cmd_invite(args: argparse.Namespace, home: Home) -> int:
    result = client(home).invite()
    if args.json:
        print_json(result)
        return 0
    expires = datetime.datetime.fromtimestamp(result["expires"], datetime.UTC)
    print(result["invite"])
    print()
    print(qr_text(result["invite"]), end="")
    print(f"Invite for {result['name'] or '(no name)'}, peer id {result['peer_id']}")
    for address in result["addresses"] or ["(no address: others can add you, not dial you)"]:
        print(f"  {address}")
    print(f"valid until {expires:%Y-%m-%d %H:%M} UTC. The other side runs:")
    print("  meshnotes contacts add INVITE      (or: meshnotes connect INVITE)")
    return 0


def accept_invite(args: argparse.Namespace, home: Home, code: str, add: bool) -> int:
    """``connect INVITE`` (add=False) or ``contacts add INVITE [--name NAME]`` (add=True)."""
    Invite.decode(code, time.time())  # one clear line before asking the node anything
    name = getattr(args, "name", None)
    result = client(home).invite_accept(code, add, name)
    if getattr(args, "json", False):
        print_json(result)
        return 0
    who = f"{result['name'] or result['peer_id'][:8]} ({result['peer_id']})"
    if add:
        print(f"added {who} to your contacts")
    if not result["dialing"]:
        print("the invite names no address to dial: the peer is reached once it dials you")
    for address in result["dialing"]:
        print(f"dialing {address}")
    return 0
