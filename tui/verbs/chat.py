"""The chat verbs: contacts, dm, say, history, and the ``room`` actions."""

from __future__ import annotations

import argparse
import time
from typing import Any

from mesh.runtime.home import Home
from mesh.wire.invite import is_invite
from tui.verbs import client, print_json
from tui.verbs.invite import accept_invite


def cmd_contacts(args: argparse.Namespace, home: Home) -> int:
    if args.action == "add" and is_invite(args.peer):
        return accept_invite(args, home, args.peer, add=True)
    node = client(home)
    if args.action == "add":
        result: Any = node.contacts_add(args.peer, args.name)
    elif args.action == "verify":
        result = node.contacts_verify(args.peer, not args.undo)
    else:
        result = node.contacts_list()
    if args.json:
        print_json(result)
        return 0
    for contact in result if isinstance(result, list) else [result]:
        mark = "verified" if contact["verified"] else "unverified"
        name = contact["name"] or "-"
        print(f"{name:<16} {contact['peer_id']}  {mark}  safety number {contact['safety_number']}")
    return 0


def cmd_dm(args: argparse.Namespace, home: Home) -> int:
    print(client(home).dm(args.peer, args.text)["id"])
    return 0


def cmd_say(args: argparse.Namespace, home: Home) -> int:
    print(client(home).say(args.room, args.text)["id"])
    return 0


def cmd_history(args: argparse.Namespace, home: Home) -> int:
    node = client(home)
    messages = node.history(args.conversation, args.limit)
    if args.json:
        print_json([{k: m[k] for k in ("id", "author", "text", "ts", "status")} for m in messages])
        return 0
    names = {c["peer_id"]: c["name"] for c in node.contacts_list()}
    me = home.public_info()[0]
    for m in messages:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["ts"] / 1000))
        who = "me" if m["author"] == me else names.get(m["author"]) or m["author"][:8]
        print(f"[{when}] {who}: {m['text']}  ({m['status']})")
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
    rooms = client(home).room_list()
    if args.json:
        print_json(rooms)
        return 0
    for room in rooms:
        print(
            f"{room['name']:<20} {room['room_id']}  {room['state']:<8} "
            f"{len(room['members'])} members, epoch {room['epoch']}"
        )
    return 0
