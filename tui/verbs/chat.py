"""The chat verbs: contacts, dm, say, history, and the ``room`` actions."""

from __future__ import annotations

import argparse
from typing import Any

from chat.contacts import check_peer_key
from mesh.errors import UsageError
from mesh.runtime.home import Home
from mesh.wire.identity import PEER_ID_LENGTH
from mesh.wire.invite import is_invite
from tui.verbs import client, message_text, print_json
from tui.verbs.invite import accept_invite
from tui.verbs.offline import reader
from tui.widgets.format import seen_text

BASE32 = set("abcdefghijklmnopqrstuvwxyz234567")


def cmd_contacts(args: argparse.Namespace, home: Home) -> int:
    if args.action == "add" and is_invite(args.peer):
        return accept_invite(args, home, args.peer, add=True)
    if args.action == "add":
        check_peer_text(args.peer)  # a bad key is one line, exit 2, before asking the node
    node = client(home)
    if args.action == "add":
        result: Any = node.contacts_add(args.peer, args.name)
    elif args.action == "verify":
        result = node.contacts_verify(args.peer, not args.undo)
    elif args.action == "rename":
        result = node.contacts_rename(args.peer, args.name)
    elif args.action == "remove":
        result = node.contacts_remove(args.peer)
        if not args.json:
            print(f"removed {result['name'] or result['peer_id'][:8]} ({result['peer_id']})")
            return 0
    elif args.action in ("block", "unblock"):
        result = node.contacts_block(args.peer, args.action == "block")
        if not args.json:
            print(f"{args.action}ed {result['name']} ({result['peer_id']})")
            return 0
    else:
        result = reader(home).contacts_list()  # the database when no node runs
    if args.json:
        print_json(result)
        return 0
    for contact in result if isinstance(result, list) else [result]:
        mark = "verified" if contact["verified"] else "unverified"
        if contact.get("blocked"):
            mark += ", blocked"
        name = contact["name"] or "-"
        own = contact.get("own_name")
        calls = f"  (calls itself {own})" if own and own != contact["name"] else ""
        print(
            f"{name:<16} {contact['peer_id']}  {mark}  {seen_text(contact)}  "
            f"safety number {contact['safety_number']}{calls}"
        )
    return 0


def check_peer_text(text: str) -> None:
    """Refuse (UsageError) what cannot name a peer to add: a full id must be a valid key,
    anything shorter an id prefix (base32 letters and digits 2-7)."""
    text = text.strip()
    if len(text) == PEER_ID_LENGTH:
        check_peer_key(text)
    elif not text or len(text) > PEER_ID_LENGTH or set(text.lower()) - BASE32:
        raise UsageError(
            f"not a peer id: {text!r} (a peer id has {PEER_ID_LENGTH} characters, a-z and 2-7; "
            "or give an invite code)"
        )


def cmd_dm(args: argparse.Namespace, home: Home) -> int:
    print(client(home).dm(args.peer, message_text(args.text))["id"])
    return 0


def cmd_say(args: argparse.Namespace, home: Home) -> int:
    print(client(home).say(args.room, message_text(args.text))["id"])
    return 0


def cmd_room_new(args: argparse.Namespace, home: Home) -> int:
    result = client(home).room_new(args.name)
    if args.json:
        print_json(result)
    else:
        print(result["room_id"])
    return 0


def cmd_room_invite(args: argparse.Namespace, home: Home) -> int:
    result = client(home).room_invite(args.room, args.peer)
    print(f"invited {result['invited']}")
    return 0


def cmd_room_remove(args: argparse.Namespace, home: Home) -> int:
    result = client(home).room_remove(args.room, args.peer)
    print(f"removed {result['removed']}; the room is now at key epoch {result['epoch']}")
    return 0


def cmd_room_join(args: argparse.Namespace, home: Home) -> int:
    result = client(home).room_join(args.room)
    print(f"joined {result['room_id']}")
    return 0


def cmd_room_handover(args: argparse.Namespace, home: Home) -> int:
    result = client(home).room_handover(args.room, args.peer)
    print(f"{result['admin']} is now the admin of {result['room_id']}")
    return 0


def cmd_room_leave(args: argparse.Namespace, home: Home) -> int:
    result = client(home).room_leave(args.room)
    print(f"left {result['room_id']}")
    return 0


def cmd_room_list(args: argparse.Namespace, home: Home) -> int:
    rooms = reader(home).room_list()
    if args.json:
        print_json(rooms)
        return 0
    for room in rooms:
        print(
            f"{room['name']:<20} {room['room_id']}  {room['state']:<8} "
            f"{len(room['members'])} members, epoch {room['epoch']}"
        )
    return 0
