"""The ``meshnotes`` argument parser: every verb, its arguments and its help.

Each verb's work is a function in :mod:`tui.verbs`; ``args.func`` names it
(:class:`tui.verbs.Verb`: its module is imported when it runs), so that a
command imports only what its own verb needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from chat.content import MAX_TEXT
from mesh.errors import UsageError
from mesh.runtime.home import CONFIG_FILE, PASSPHRASE_ENV
from tui.verbs import PROG, Verb
from tui.verbs.dials import CONNECT_WAIT

CHAT = "tui.verbs.chat"
DIALS = "tui.verbs.dials"
FILES = "tui.verbs.files"
INVITE = "tui.verbs.invite"
MESSAGES = "tui.verbs.messages"
NODE = "tui.verbs.node"
NOTES = "tui.verbs.notes"
PASSPHRASE = "tui.verbs.passphrase"
#: what ``meshnotes`` with no verb runs: the terminal UI
OPEN = Verb(NODE, "cmd_open")
#: the options before the verb that take a value
VALUED = ("--home", "--log-level", "--passphrase-file")
RUN_HELP = "run a node: in the terminal UI, or --headless until a signal"

TEXT_HELP = f"the message, at most {MAX_TEXT:,} characters; - reads it from stdin"
MSG_ID_HELP = "a message id (history --json), or an unambiguous prefix of 6+ characters"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)  # one line, as every error; `--help` shows the usage


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked (reading
    the installed packages' metadata takes longer than a read verb's whole work)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="show program's version number and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        import importlib.metadata

        try:
            version = importlib.metadata.version(PROG)
        except importlib.metadata.PackageNotFoundError:  # run from a source tree
            version = "(not installed)"
        print(f"{PROG} {version}")
        parser.exit()


def named_verb(argv: Sequence[str]) -> str | None:
    """The verb `argv` names (its first word that is no option), for :func:`build_parser`;
    None when it names none."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return None
        if token.startswith("-"):
            # argparse takes an unambiguous prefix of an option (--ho for --home)
            if "=" not in token and len(token) > 2 and any(o.startswith(token) for o in VALUED):
                next(tokens, None)
            continue
        return token
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every verb. With `only` (the verb of the command to parse), ``run`` is
    listed without its options unless it is `only`: they import the node's settings."""
    parser = _Parser(
        prog=PROG,
        description="Encrypted, decentralized mesh chat and shared notes.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--home", help="home directory (default: $MESHNOTES_HOME or user data dir)")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="log detail on stderr (default: info for run, warning otherwise)",
    )
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        help=f"file holding the home's passphrase (or set ${PASSPHRASE_ENV})",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    p = verbs.add_parser("init", help="create an identity and print its peer id")
    p.add_argument("--name", default="", help="display name shown to others")
    p.set_defaults(func=Verb(NODE, "cmd_init"))

    p = verbs.add_parser("id", help="print this home's peer id and name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=Verb(NODE, "cmd_id"))

    if only in (None, "run"):
        _add_run(verbs.add_parser("run", help=RUN_HELP))
    else:  # listed, for the top-level --help; its options come from the node's settings
        verbs.add_parser("run", help=RUN_HELP)

    p = verbs.add_parser("config", help=f"show the settings that apply ({CONFIG_FILE}, defaults)")
    p.add_argument("--json", action="store_true", help="print JSON: each value and its source")
    p.set_defaults(func=Verb(NODE, "cmd_config"))

    p = verbs.add_parser(
        "passphrase",
        help="set, change or remove the passphrase that encrypts the key file and database",
    )
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

    p = verbs.add_parser("bridge-token", help="print the token Yjs clients give the bridge")
    p.set_defaults(func=Verb(NODE, "cmd_bridge_token"))

    p = verbs.add_parser(
        "note",
        help="shared notes: new, list, cat, append, import, export, rename, history, restore,"
        " delete, undelete",
    )
    notes = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
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

    p = verbs.add_parser("send-file", help="send a file, end-to-end encrypted, to a room or a peer")
    p.add_argument("to", metavar="PEER_OR_ROOM", help="room id, prefix or name; or a peer")
    p.add_argument("path", metavar="PATH", help="the file to send")
    p.add_argument("--json", action="store_true", help='print {"file_id", "message_id"}')
    p.set_defaults(func=Verb(FILES, "cmd_send_file"))

    p = verbs.add_parser("files", help="attachments: list, get, link")
    files = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
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

    p = verbs.add_parser("status", help="show the running node's links, routes and counters")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=Verb(NODE, "cmd_status"))

    p = verbs.add_parser("ping", help="send signed end-to-end pings to a peer")
    p.add_argument("peer", metavar="PEER", help="peer id or unambiguous id prefix")
    p.add_argument("--count", "-c", type=int, default=1, help="number of pings (default 1)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between pings")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    p.add_argument("--json", action="store_true", help="print JSON: a list of {rtt_ms, hops}")
    p.set_defaults(func=Verb(NODE, "cmd_ping"))

    p = verbs.add_parser(
        "contacts", help="list contacts, or add / rename / remove / verify / block one"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=Verb(CHAT, "cmd_contacts"))
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
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

    p = verbs.add_parser("dm", help="send a direct message; prints its id")
    p.add_argument("peer", metavar="PEER", help="nickname, peer id or unambiguous id prefix")
    p.add_argument("text", metavar="TEXT", help=TEXT_HELP)
    p.set_defaults(func=Verb(CHAT, "cmd_dm"))

    p = verbs.add_parser("say", help="send a message to a room; prints its id")
    p.add_argument("room", metavar="ROOM", help="room id, unambiguous id prefix, or name")
    p.add_argument("text", metavar="TEXT", help=TEXT_HELP)
    p.set_defaults(func=Verb(CHAT, "cmd_say"))

    p = verbs.add_parser("history", help="show a room's or a direct conversation's messages")
    p.add_argument("conversation", metavar="ROOM_OR_PEER")
    p.add_argument("--limit", type=int, default=50, help="last N messages (default 50)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON: {id, author, text, ts, status, edited, deleted, reply_to, ...}",
    )
    p.set_defaults(func=Verb(MESSAGES, "cmd_history"))

    p = verbs.add_parser("search", help="search every conversation's history (full text)")
    p.add_argument("query", metavar="QUERY", help="words that must all match; word* for a prefix")
    p.add_argument(
        "--in", dest="conversation", metavar="ROOM_OR_PEER", help="only this conversation"
    )
    p.add_argument("--limit", type=int, default=20, help="at most N results (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON: [{id, conv, author, text, ts}]")
    p.set_defaults(func=Verb(MESSAGES, "cmd_search"))

    p = verbs.add_parser("edit", help="change the text of a message of yours, for everyone")
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("text", metavar="TEXT", help=TEXT_HELP)
    p.add_argument("--json", action="store_true", help='print {"id": ...} (the edit\'s id)')
    p.set_defaults(func=Verb(MESSAGES, "cmd_edit"))

    p = verbs.add_parser("delete", help="delete a message of yours, for everyone")
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("--json", action="store_true", help='print {"id": ...} (the delete\'s id)')
    p.set_defaults(func=Verb(MESSAGES, "cmd_delete"))

    p = verbs.add_parser("reply", help="answer a message in its conversation; prints its id")
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("text", metavar="TEXT", help=TEXT_HELP)
    p.add_argument("--json", action="store_true", help='print {"id": ...}')
    p.set_defaults(func=Verb(MESSAGES, "cmd_reply"))

    p = verbs.add_parser("react", help="toggle your reaction (an emoji) on a message")
    p.add_argument("msg_id", metavar="MSG_ID", help=MSG_ID_HELP)
    p.add_argument("emoji", metavar="EMOJI", help="one emoji, such as 👍")
    p.add_argument("--json", action="store_true", help="print JSON: {id, msg_id, emoji, on}")
    p.set_defaults(func=Verb(MESSAGES, "cmd_react"))

    p = verbs.add_parser("unread", help="list conversations with unread messages and mentions")
    p.add_argument("--json", action="store_true", help="print JSON: [{conv, unread, mentions}]")
    p.set_defaults(func=Verb(MESSAGES, "cmd_unread"))

    p = verbs.add_parser("read", help="mark everything in a conversation read")
    p.add_argument("conversation", metavar="ROOM_OR_PEER")
    p.add_argument("--json", action="store_true", help='print {"conv": ...}')
    p.set_defaults(func=Verb(MESSAGES, "cmd_read"))

    p = verbs.add_parser("room", help="create, list, join rooms; invite and remove members")
    rooms = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
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

    p = verbs.add_parser("demo", help="three local peers, a shared room and note, in the UI")
    p.set_defaults(func=Verb(NODE, "cmd_demo"))

    p = verbs.add_parser("invite", help="print this node's signed invite code and its QR code")
    p.add_argument("--json", action="store_true", help='print {"invite": ..., "addresses": ...}')
    p.set_defaults(func=Verb(INVITE, "cmd_invite"))

    p = verbs.add_parser("connect", help="make the running node dial a peer")
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

    p = verbs.add_parser("disconnect", help="close the links with a peer; no redial for a while")
    p.add_argument("peer", metavar="PEER", help="nickname, peer id or unambiguous id prefix")
    p.set_defaults(func=Verb(DIALS, "cmd_disconnect"))

    p = verbs.add_parser("forget", help="stop dialing an address")
    p.add_argument(
        "address", metavar="ADDRESS", help="ws://HOST:PORT#PEERID, ws://HOST:PORT, or a peer id"
    )
    p.set_defaults(func=Verb(DIALS, "cmd_forget"))
    return parser


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
        "--yjs-bridge",
        metavar="127.0.0.1:PORT",
        help="serve notes to Yjs editors (y-websocket) on this loopback address",
    )
    p.set_defaults(func=Verb(NODE, "cmd_run"))
