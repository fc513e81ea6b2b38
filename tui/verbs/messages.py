"""The verbs on single messages and across history: search, edit, delete, reply, react,
unread, read; and how ``history`` prints a message."""

from __future__ import annotations

import argparse
import time
from typing import Any

from mesh.runtime.home import Home
from tui.verbs import client, message_text, print_json
from tui.verbs.offline import reader

#: what ``history --json`` gives of each message
HISTORY_KEYS = (
    "id",
    "author",
    "author_name",
    "text",
    "ts",
    "status",
    "edited",
    "deleted",
    "mention",
    "reply_to",
    "reactions",
)


def message_line(m: dict[str, Any], me: str) -> str:
    """One message as ``history`` prints it: time, author, text, and what happened to it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["ts"] / 1000))
    # the node names the author: nickname, else its own announced name, else the id prefix
    who = "me" if m["author"] == me else m.get("author_name") or m["author"][:8]
    text = "message deleted" if m.get("deleted") else m["text"]
    if m.get("edited"):
        text += " (edited)"
    quote = m.get("quote")
    if m.get("reply_to"):
        quoted = (
            "message not here"
            if quote is None
            else ("message deleted" if quote["deleted"] else quote["text"][:60])
        )
        text = f"[re {m['reply_to'][:8]}: {quoted}] {text}"
    reactions = " ".join(f"{e}{n}" for e, n in (m.get("reactions") or {}).items())
    tail = f"  {reactions}" if reactions else ""
    return f"[{when}] {m['id'][:8]} {who}: {text}  ({m['status']}){tail}"


def cmd_history(args: argparse.Namespace, home: Home) -> int:
    node = reader(home)
    messages = node.history(args.conversation, args.limit)
    if args.json:
        print_json([{k: m.get(k) for k in HISTORY_KEYS} for m in messages])
        return 0
    me = home.public_info()[0]
    for m in messages:
        print(message_line(m, me))
    return 0


def cmd_search(args: argparse.Namespace, home: Home) -> int:
    found = reader(home).search(args.query, args.conversation, args.limit)
    if args.json:
        print_json(found)
        return 0
    for r in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["ts"] / 1000))
        print(f"[{when}] {r['id']}  {r['conv'][:8]}  {r['author'][:8]}: {r['text']}")
    return 0


def _sent(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if args.json:
        print_json(result)
    else:
        print(result["id"])
    return 0


def cmd_edit(args: argparse.Namespace, home: Home) -> int:
    return _sent(args, client(home).edit(args.msg_id, message_text(args.text)))


def cmd_delete(args: argparse.Namespace, home: Home) -> int:
    return _sent(args, client(home).delete(args.msg_id))


def cmd_reply(args: argparse.Namespace, home: Home) -> int:
    return _sent(args, client(home).reply(args.msg_id, message_text(args.text)))


def cmd_react(args: argparse.Namespace, home: Home) -> int:
    result = client(home).react(args.msg_id, args.emoji)
    if args.json:
        print_json(result)
    else:
        print(f"{result['emoji']} {'on' if result['on'] else 'off'} {result['msg_id']}")
    return 0


def cmd_unread(args: argparse.Namespace, home: Home) -> int:
    counts = reader(home).unread()
    if args.json:
        print_json(counts)
        return 0
    for c in counts:
        mentions = f", {c['mentions']} mentioning you" if c["mentions"] else ""
        print(f"{c['conv']}  {c['unread']} unread{mentions}")
    return 0


def cmd_read(args: argparse.Namespace, home: Home) -> int:
    result = client(home).mark_read(args.conversation)
    if args.json:
        print_json(result)
    else:
        print(f"read {result['conv']}")
    return 0
