"""What each ``meshnotes`` verb takes: its arguments, options and help, one function a verb.

:data:`VERBS` lists them in the order ``--help`` shows; :func:`tui.parser.build_parser`
adds all of them, or, for a command that names its verb, that verb alone (building
every verb's parser took longer than a read verb's whole work).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from mesh.runtime.home import CONFIG_FILE
from tui.verbs import Verb
from tui.verbs.dials import CONNECT_WAIT

CHAT = "tui.verbs.chat"
DIALS = "tui.verbs.dials"
FILES = "tui.verbs.files"
INVITE = "tui.verbs.invite"
MESSAGES = "tui.verbs.messages"
NODE = "tui.verbs.node"
NOTES = "tui.verbs.notes"
PASSPHRASE = "tui.verbs.passphrase"
RUN_HELP = "run a node: in the terminal UI, or --headless until a signal"


def _text_help() -> str:
    from chat.content import MAX_TEXT  # for the verbs that send text (it imports dataclasses)

    return f"the message, at most {MAX_TEXT:,} characters; - reads it from stdin"


MSG_ID_HELP = "a message id (history --json), or an unambiguous prefix of 6+ characters"


def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="", help="display name shown to others")
    p.set_defaults(func=Verb(NODE, "cmd_init"))


def _id(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=Verb(NODE, "cmd_id"))


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON: each value and its source")
    p.set_defaults(func=Verb(NODE, "cmd_config"))


def _passphrase(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--new-passphrase-file",
        type=Path,
        metavar="FILE",
        help="file holding the new passphrase (default: asked twice on the terminal)",
    )
    which.add_argument(
        "--remove",
        action="store_true",
        help="store the key file and the database in the clear from now on",
    )
    p.set_defaults(func=Verb(PASSPHRASE, "cmd_passphrase"))


def _bridge_token(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=Verb(NODE, "cmd_bridge_token"))


def _note(p: argparse.ArgumentParser) -> None:
    notes = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p), required=True)
    q = notes.add_parser("new", help="create a note in a room; prints its id")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("title", metavar="TITLE")
    q.add_argument("--json", action="store_true", help='print {"note_id": ...}')
    q.set_defaults(func=Verb(NOTES, "cmd_note_new"))
    q = notes.add_parser("list", help="list notes (of one room)")
    q.add_argument("room", metavar="ROOM", nargs="?")
    q.add_argument("--all", action="store_true", help="deleted notes too")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=Verb(NOTES, "cmd_note_list"))
    q = notes.add_parser("cat", help="print a note's text")
    q.add_argument("note", metavar="NOTE", help="note id, unambiguous id prefix, or title")
    q.add_argument("--version", type=int, help="as it was in this version (see 'note history')")
    q.set_defaults(func=Verb(NOTES, "cmd_note_cat"))
    q = notes.add_parser("append", help="append text to a note")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("text", metavar="TEXT")
    q.set_defaults(func=Verb(NOTES, "cmd_note_append"))
    q = notes.add_parser("import", help="create a note from a Markdown file")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("file", metavar="FILE", type=Path)
    q.set_defaults(func=Verb(NOTES, "cmd_note_import"))
    q = notes.add_parser("export", help="write a note to a Markdown file")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("file", metavar="FILE", type=Path)
    q.add_argument("--version", type=int, help="as it was in this version (see 'note history')")
    q.set_defaults(func=Verb(NOTES, "cmd_note_export"))
    q = notes.add_parser("rename", help="give a note a new title")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("title", metavar="TITLE")
    q.add_argument("--json", action="store_true", help='print {"note_id", "title"}')
    q.set_defaults(func=Verb(NOTES, "cmd_note_rename"))
    q = notes.add_parser("history", help="list a note's versions (who, when, how long)")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=Verb(NOTES, "cmd_note_history"))
    for action, about in (
        ("delete", "delete a note for every member (undelete within 30 days)"),
        ("undelete", "undo a delete (the member who deleted, or the room's admin)"),
    ):
        q = notes.add_parser(action, help=about)
        q.add_argument("note", metavar="NOTE")
        q.add_argument("--json", action="store_true", help='print {"note_id", "deleted"}')
        q.set_defaults(func=Verb(NOTES, "cmd_note_delete"))
    q = notes.add_parser("restore", help="make a version's text the note's, as a new edit")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("version", metavar="VERSION", type=int)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=Verb(NOTES, "cmd_note_restore"))


def _send_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("to", metavar="PEER_OR_ROOM", help="room id, prefix or name; or a peer")
    p.add_argument("path", metavar="PATH", help="the file to send")
    p.add_argument("--json", action="store_true", help='print {"file_id", "message_id"}')
    p.set_defaults(func=Verb(FILES, "cmd_send_file"))


def _files(p: argparse.ArgumentParser) -> None:
    files = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p), required=True)
    q = files.add_parser("list", help="the files sent and received, newest first")
    q.add_argument(
        "--json", action="store_true", help="print JSON: [{file_id, name, size, state, have_bytes}]"
    )
    q.set_defaults(func=Verb(FILES, "cmd_files_list"))
    q = files.add_parser("get", help="fetch a file (showing progress) and write it out")
    q.add_argument("file", metavar="FILE_ID", help="file id or unambiguous prefix (files list)")
    q.add_argument("out", metavar="OUT", help="where to write it (a directory: under its name)")
    q.add_argument("--timeout", type=float, help="give up after this many seconds (default: wait)")
    q.set_defaults(func=Verb(FILES, "cmd_files_get"))
    q = files.add_parser("link", help="print the Markdown link a note uses to link a file")
    q.add_argument("file", metavar="FILE_ID", help="file id or unambiguous prefix (files list)")
    q.add_argument("--json", action="store_true", help='print {"file_id", "name", "link"}')
    q.set_defaults(func=Verb(FILES, "cmd_files_link"))


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=Verb(NODE, "cmd_status"))


def _ping(p: argparse.ArgumentParser) -> None:
    p.add_argument("peer", metavar="PEER", help="peer id or unambiguous id prefix")
    p.add_argument("--count", "-c", type=int, default=1, help="number of pings (default 1)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between pings")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    p.add_argument("--json", action="store_true", help="print JSON: a list of {rtt_ms, hops}")
    p.set_defaults(func=Verb(NODE, "cmd_ping"))


def _contacts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=Verb(CHAT, "cmd_contacts"))
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    q = sub.add_parser("add", help="add a contact (or rename one)")
    q.add_argument(
        "peer",
        metavar="PEERID|INVITE",
        help="peer id (52 characters, a valid key; or an unambiguous prefix of a known peer), "
        "or an invite code (then dialed)",
    )
    q.add_argument("--name", help="nickname to use instead of the id (or the invite's name)")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    q = sub.add_parser("verify", help="mark a contact verified after comparing safety numbers")
    q.add_argument("peer", metavar="PEER")
    q.add_argument("--undo", action="store_true", help="mark it unverified again")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    q = sub.add_parser("rename", help="give a contact a new nickname")
    q.add_argument("peer", metavar="PEER")
    q.add_argument("name", metavar="NAME", help="the new nickname (unique among contacts)")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    q = sub.add_parser("remove", help="remove a contact (its history stays)")
    q.add_argument("peer", metavar="PEER")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    q = sub.add_parser(
        "block", help="drop every message from a peer (contact or not) and hide its history"
    )
    q.add_argument("peer", metavar="PEER")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    q = sub.add_parser("unblock", help="show and accept a blocked peer's messages again")
    q.add_argument("peer", metavar="PEER")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def _dm(p: argparse.ArgumentParser) -> None:
    p.add_argument("peer", metavar="PEER", help="nickname, peer id or unambiguous id prefix")
    p.add_argument("text", metavar="TEXT", help=_text_help())
    p.set_defaults(func=Verb(CHAT, "cmd_dm"))


def _say(p: argparse.ArgumentParser) -> None:
    p.add_argument("room", metavar="ROOM", help="room id, unambiguous id prefix, or name")
    p.add_argument("text", metavar="TEXT", help=_text_help())
    p.set_defaults(func=Verb(CHAT, "cmd_say"))


def _history(p: argparse.ArgumentParser) -> None:
    p.add_argument("conversation", metavar="ROOM_OR_PEER")
    p.add_argument("--limit", type=int, default=50, help="last N messages (default 50)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON: {id, author, text, ts, status, edited, deleted, reply_to, ...}",
    )
    p.set_defaults(func=Verb(MESSAGES, "cmd_history"))


def _search(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", metavar="QUERY", help="words that must all match; word* for a prefix")
    p.add_argument(
        "--in", dest="conversation", metavar="ROOM_OR_PEER", help="only this conversation"
    )
    p.add_argument("--limit", type=int, default=20, help="at most N results (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON: [{id, conv, author, text, ts}]")
    p.set_defaults(func=Verb(MESSAGES, "cmd_search"))


def _edit(p: argparse.ArgumentParser) -> None:
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("text", metavar="TEXT", help=_text_help())
    p.add_argument("--json", action="store_true", help='print {"id": ...} (the edit\'s id)')
    p.set_defaults(func=Verb(MESSAGES, "cmd_edit"))


def _delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("--json", action="store_true", help='print {"id": ...} (the delete\'s id)')
    p.set_defaults(func=Verb(MESSAGES, "cmd_delete"))


def _reply(p: argparse.ArgumentParser) -> None:
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("text", metavar="TEXT", help=_text_help())
    p.add_argument("--json", action="store_true", help='print {"id": ...}')
    p.set_defaults(func=Verb(MESSAGES, "cmd_reply"))


def _react(p: argparse.ArgumentParser) -> None:
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("emoji", metavar="EMOJI", help="one emoji, such as 👍")
    p.add_argument("--json", action="store_true", help="print JSON: {id, msg_id, emoji, on}")
    p.set_defaults(func=Verb(MESSAGES, "cmd_react"))


def _unread(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON: [{conv, unread, mentions}]")
    p.set_defaults(func=Verb(MESSAGES, "cmd_unread"))


def _read(p: argparse.ArgumentParser) -> None:
    p.add_argument("conversation", metavar="ROOM_OR_PEER")
    p.add_argument("--json", action="store_true", help='print {"conv": ...}')
    p.set_defaults(func=Verb(MESSAGES, "cmd_read"))


def _room(p: argparse.ArgumentParser) -> None:
    rooms = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p), required=True)
    q = rooms.add_parser("new", help="create a room; prints its id")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--json", action="store_true", help='print {"room_id": ...}')
    q.set_defaults(func=Verb(CHAT, "cmd_room_new"))
    q = rooms.add_parser("invite", help="invite a peer (admin only)")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("peer", metavar="PEER")
    q.set_defaults(func=Verb(CHAT, "cmd_room_invite"))
    q = rooms.add_parser("remove", help="remove a member (admin only); starts a new key epoch")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("peer", metavar="PEER")
    q.set_defaults(func=Verb(CHAT, "cmd_room_remove"))
    q = rooms.add_parser("join", help="accept a pending invitation")
    q.add_argument("room", metavar="ROOM")
    q.set_defaults(func=Verb(CHAT, "cmd_room_join"))
    q = rooms.add_parser("handover", help="make another member the room's admin (admin only)")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("peer", metavar="PEER")
    q.set_defaults(func=Verb(CHAT, "cmd_room_handover"))
    q = rooms.add_parser("leave", help="leave a room (not its admin); starts a new key epoch")
    q.add_argument("room", metavar="ROOM")
    q.set_defaults(func=Verb(CHAT, "cmd_room_leave"))
    q = rooms.add_parser("list", help="list rooms with their members")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=Verb(CHAT, "cmd_room_list"))


def _demo(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=Verb(NODE, "cmd_demo"))


def _invite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help='print {"invite": ..., "addresses": ...}')
    p.set_defaults(func=Verb(INVITE, "cmd_invite"))


def _connect(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "address", metavar="ws://HOST:PORT#PEERID|INVITE", help="a peer address or an invite code"
    )
    p.add_argument(
        "--wait",
        type=float,
        default=CONNECT_WAIT,
        metavar="S",
        help=f"seconds to wait for the link or a failure (default {CONNECT_WAIT:g}; 0: none)",
    )
    p.set_defaults(func=Verb(NODE, "cmd_connect"))


def _disconnect(p: argparse.ArgumentParser) -> None:
    p.add_argument("peer", metavar="PEER", help="nickname, peer id or unambiguous id prefix")
    p.set_defaults(func=Verb(DIALS, "cmd_disconnect"))


def _forget(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "address", metavar="ADDRESS", help="ws://HOST:PORT#PEERID, ws://HOST:PORT, or a peer id"
    )
    p.set_defaults(func=Verb(DIALS, "cmd_forget"))


def _add_run(p: argparse.ArgumentParser) -> None:
    """The options of ``run``."""
    from mesh.routing.router import AUTO_TREE_FROM, ROOM_MODES
    from mesh.runtime.settings import DEFAULT_LISTEN

    p.add_argument("--headless", action="store_true", help="no UI: run until SIGINT/SIGTERM")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"listen address (default {DEFAULT_LISTEN}: every interface; port 0: a free one)",
    )
    p.add_argument(
        "--peer",
        action="extend",
        nargs="+",
        metavar="ws://HOST:PORT#ID",
        help=f"peer to keep a link to (repeatable; replaces the peers of {CONFIG_FILE})",
    )
    p.add_argument(
        "--no-auto-connect",
        action="store_true",
        help="dial only --peer and 'connect' addresses, not learned or LAN ones",
    )
    p.add_argument(
        "--no-lan",
        action="store_true",
        help="neither announce this node on the local network (mDNS) nor look for peers there",
    )
    p.add_argument(
        "--mesh-key-file",
        type=Path,
        metavar="FILE",
        help="private mesh key: one line of base64 holding 32 bytes",
    )
    p.add_argument("--name", help="display name if a new identity is created")
    p.add_argument(
        "--rooms",
        choices=ROOM_MODES,
        help="how room traffic travels: flood (every link), tree (each author's shortest-path"
        f" tree), auto (flood below {AUTO_TREE_FROM} known peers, tree above; the default)",
    )
    p.add_argument(
        "--announce-radius",
        type=int,
        choices=range(9),
        metavar="N",
        help="links this node's announces cross, 1 to 8 (0: the whole mesh, the default);"
        " farther paths are asked for when traffic needs them",
    )
    p.add_argument(
        "--yjs-bridge",
        metavar="127.0.0.1:PORT",
        help="serve notes to Yjs editors (y-websocket) on this loopback address",
    )
    p.set_defaults(func=Verb(NODE, "cmd_run"))


#: (name, help, the function adding its arguments) of every verb, in --help's order
VERBS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("init", "create an identity and print its peer id", _init),
    ("id", "print this home's peer id and name", _id),
    ("run", RUN_HELP, _add_run),
    ("config", f"show the settings that apply ({CONFIG_FILE}, defaults)", _config),
    (
        "passphrase",
        "set, change or remove the passphrase that encrypts the key file and database",
        _passphrase,
    ),
    ("bridge-token", "print the token Yjs clients give the bridge", _bridge_token),
    (
        "note",
        "shared notes: new, list, cat, append, import, export, rename, history, restore,"
        " delete, undelete",
        _note,
    ),
    ("send-file", "send a file, end-to-end encrypted, to a room or a peer", _send_file),
    ("files", "attachments: list, get, link", _files),
    ("status", "show the running node's links, routes and counters", _status),
    ("ping", "send signed end-to-end pings to a peer", _ping),
    ("contacts", "list contacts, or add / rename / remove / verify / block one", _contacts),
    ("dm", "send a direct message; prints its id", _dm),
    ("say", "send a message to a room; prints its id", _say),
    ("history", "show a room's or a direct conversation's messages", _history),
    ("search", "search every conversation's history (full text)", _search),
    ("edit", "change the text of a message of yours, for everyone", _edit),
    ("delete", "delete a message of yours, for everyone", _delete),
    ("reply", "answer a message in its conversation; prints its id", _reply),
    ("react", "toggle your reaction (an emoji) on a message", _react),
    ("unread", "list conversations with unread messages and mentions", _unread),
    ("read", "mark everything in a conversation read", _read),
    ("room", "create, list, join rooms; invite and remove members", _room),
    ("demo", "three local peers, a shared room and note, in the UI", _demo),
    ("invite", "print this node's signed invite code and its QR code", _invite),
    ("connect", "make the running node dial a peer", _connect),
    ("disconnect", "close the links with a peer; no redial for a while", _disconnect),
    ("forget", "stop dialing an address", _forget),
)
