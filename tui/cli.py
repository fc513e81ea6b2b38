"""The ``meshnotes`` command line: one verb per job, one clear line per error.

Verbs that need a running node (all but init, run, demo and bridge-token) talk
to it through the home's control socket; ``run`` starts that node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chat.daemon import MAX_PING_COUNT, Daemon
from crdt.bridge import bridge_token
from mesh.errors import MeshError, UsageError
from mesh.routing.router import AUTO_TREE_FROM, ROOM_MODES, room_routing
from mesh.runtime import control
from mesh.runtime.home import PASSPHRASE_ENV, Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress, parse_listen
from mesh.wire.netkey import DEFAULT_NETWORK_KEY, load_network_key
from tui.session import Session

PROG = "meshnotes"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Encrypted, decentralized mesh chat and shared notes.",
    )
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
        help=f"file holding the key file's passphrase (or set ${PASSPHRASE_ENV})",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    p = verbs.add_parser("init", help="create an identity and print its peer id")
    p.add_argument("--name", default="", help="display name shown to others")
    p.set_defaults(func=cmd_init)

    p = verbs.add_parser("id", help="print this home's peer id and name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_id)

    p = verbs.add_parser("run", help="run a node: in the terminal UI, or --headless until a signal")
    p.add_argument("--headless", action="store_true", help="no UI: run until SIGINT/SIGTERM")
    p.add_argument(
        "--listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="listen address (default 127.0.0.1:0, a free port)",
    )
    p.add_argument(
        "--peer",
        action="extend",
        nargs="+",
        default=[],
        metavar="ws://HOST:PORT#ID",
        help="peer to keep a link to (repeatable)",
    )
    p.add_argument(
        "--no-auto-connect",
        action="store_true",
        help="dial only --peer and 'connect' addresses, not learned ones",
    )
    p.add_argument(
        "--mesh-key-file",
        type=Path,
        metavar="FILE",
        help="private mesh key: one line of base64 holding 32 bytes",
    )
    p.add_argument("--name", default="", help="display name if a new identity is created")
    p.add_argument(
        "--rooms",
        choices=ROOM_MODES,
        default="auto",
        help="how room traffic travels: flood (every link), tree (each author's shortest-path"
        f" tree), auto (flood below {AUTO_TREE_FROM} known peers, tree above; the default)",
    )
    p.add_argument(
        "--yjs-bridge",
        metavar="127.0.0.1:PORT",
        help="serve notes to Yjs editors (y-websocket) on this loopback address",
    )
    p.set_defaults(func=cmd_run)

    p = verbs.add_parser("bridge-token", help="print the token Yjs clients give the bridge")
    p.set_defaults(func=cmd_bridge_token)

    p = verbs.add_parser("note", help="shared notes: new, list, cat, append, import, export")
    notes = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    q = notes.add_parser("new", help="create a note in a room; prints its id")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("title", metavar="TITLE")
    q.add_argument("--json", action="store_true", help='print {"note_id": ...}')
    q.set_defaults(func=cmd_note_new)
    q = notes.add_parser("list", help="list notes (of one room)")
    q.add_argument("room", metavar="ROOM", nargs="?")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_note_list)
    q = notes.add_parser("cat", help="print a note's text")
    q.add_argument("note", metavar="NOTE", help="note id, unambiguous id prefix, or title")
    q.set_defaults(func=cmd_note_cat)
    q = notes.add_parser("append", help="append text to a note")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("text", metavar="TEXT")
    q.set_defaults(func=cmd_note_append)
    q = notes.add_parser("import", help="create a note from a Markdown file")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("file", metavar="FILE", type=Path)
    q.set_defaults(func=cmd_note_import)
    q = notes.add_parser("export", help="write a note to a Markdown file")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("file", metavar="FILE", type=Path)
    q.set_defaults(func=cmd_note_export)

    p = verbs.add_parser("status", help="show the running node's links, routes and counters")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)

    p = verbs.add_parser("ping", help="send signed end-to-end pings to a peer")
    p.add_argument("peer", metavar="PEER", help="peer id or unambiguous id prefix")
    p.add_argument("--count", "-c", type=int, default=1, help="number of pings (default 1)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between pings")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    p.add_argument("--json", action="store_true", help="print JSON: a list of {rtt_ms, hops}")
    p.set_defaults(func=cmd_ping)

    p = verbs.add_parser("contacts", help="list contacts, or add / verify one")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_contacts)
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    q = sub.add_parser("add", help="add a contact (or rename one)")
    q.add_argument("peer", metavar="PEERID", help="peer id (or unambiguous prefix of a known peer)")
    q.add_argument("--name", help="nickname to use instead of the id")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    q = sub.add_parser("verify", help="mark a contact verified after comparing safety numbers")
    q.add_argument("peer", metavar="PEER")
    q.add_argument("--undo", action="store_true", help="mark it unverified again")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    p = verbs.add_parser("dm", help="send a direct message; prints its id")
    p.add_argument("peer", metavar="PEER", help="nickname, peer id or unambiguous id prefix")
    p.add_argument("text", metavar="TEXT")
    p.set_defaults(func=cmd_dm)

    p = verbs.add_parser("say", help="send a message to a room; prints its id")
    p.add_argument("room", metavar="ROOM", help="room id, unambiguous id prefix, or name")
    p.add_argument("text", metavar="TEXT")
    p.set_defaults(func=cmd_say)

    p = verbs.add_parser("history", help="show a room's or a direct conversation's messages")
    p.add_argument("conversation", metavar="ROOM_OR_PEER")
    p.add_argument("--limit", type=int, default=50, help="last N messages (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON: {id, author, text, ts, status}")
    p.set_defaults(func=cmd_history)

    p = verbs.add_parser("room", help="create, list, join rooms; invite and remove members")
    rooms = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    q = rooms.add_parser("new", help="create a room; prints its id")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--json", action="store_true", help='print {"room_id": ...}')
    q.set_defaults(func=cmd_room_new)
    q = rooms.add_parser("invite", help="invite a peer (admin only)")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("peer", metavar="PEER")
    q.set_defaults(func=cmd_room_invite)
    q = rooms.add_parser("remove", help="remove a member (admin only); starts a new key epoch")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("peer", metavar="PEER")
    q.set_defaults(func=cmd_room_remove)
    q = rooms.add_parser("join", help="accept a pending invitation")
    q.add_argument("room", metavar="ROOM")
    q.set_defaults(func=cmd_room_join)
    q = rooms.add_parser("handover", help="make another member the room's admin (admin only)")
    q.add_argument("room", metavar="ROOM")
    q.add_argument("peer", metavar="PEER")
    q.set_defaults(func=cmd_room_handover)
    q = rooms.add_parser("leave", help="leave a room (not its admin); starts a new key epoch")
    q.add_argument("room", metavar="ROOM")
    q.set_defaults(func=cmd_room_leave)
    q = rooms.add_parser("list", help="list rooms with their members")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_room_list)

    p = verbs.add_parser("demo", help="three local peers, a shared room and note, in the UI")
    p.set_defaults(func=cmd_demo)

    p = verbs.add_parser("connect", help="make the running node dial a peer")
    p.add_argument("address", metavar="ws://HOST:PORT#PEERID")
    p.set_defaults(func=cmd_connect)
    return parser


# -- verbs --------------------------------------------------------------------


def _passphrase(args: argparse.Namespace) -> str | None:
    if args.passphrase_file is None:
        return None
    try:
        return str(args.passphrase_file.read_text().rstrip("\n"))
    except OSError as exc:
        raise UsageError(f"cannot read the passphrase file: {exc.strerror or exc}") from exc


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def cmd_init(args: argparse.Namespace, home: Home) -> int:
    identity = home.create_identity(args.name, _passphrase(args))
    print(identity.peer_id)
    return 0


def cmd_id(args: argparse.Namespace, home: Home) -> int:
    peer_id, name = home.public_info()
    info: dict[str, Any] = {"peer_id": peer_id, "name": name, "address": None}
    with contextlib.suppress(MeshError):
        info["address"] = control.call(home.control_socket, "id", timeout=5)["address"]
    if args.json:
        _print_json(info)
    else:
        print(peer_id + (f"  ({name})" if name else ""))
        if info["address"]:
            print(info["address"])
    return 0


def cmd_run(args: argparse.Namespace, home: Home) -> int:
    host, port = parse_listen(args.listen)
    peers = [PeerAddress.parse(text) for text in args.peer]
    key = load_network_key(args.mesh_key_file) if args.mesh_key_file else DEFAULT_NETWORK_KEY
    config = NodeConfig(
        listen=(host, port),
        peers=peers,
        auto_connect=not args.no_auto_connect,
        network_key=key,
        router=room_routing(args.rooms),
    )
    bridge = parse_listen(args.yjs_bridge) if args.yjs_bridge else None
    session = Session.for_home(home, config, bridge, args.name, _passphrase(args))
    if not args.headless:
        return _run_app(session)
    return asyncio.run(_run_until_signal(session.daemon))


def _run_app(session: Session) -> int:
    from tui.app import MeshnotesApp

    app = MeshnotesApp(session)
    app.run()
    if app.error:
        raise MeshError(app.error)
    return app.return_code or 0


async def _run_until_signal(daemon: Daemon) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with daemon:
        print(f"meshnotes node {daemon.node.identity.peer_id} listening on {daemon.node.address}")
        sys.stdout.flush()
        await stop.wait()
    return 0


def cmd_bridge_token(args: argparse.Namespace, home: Home) -> int:
    home.public_info()  # a home with an identity, or one clear error
    print(bridge_token(home.root / "bridge.token"))
    return 0


def cmd_note_new(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "note.new", {"room": args.room, "title": args.title})
    print(json.dumps(result) if args.json else result["note_id"])
    return 0


def cmd_note_list(args: argparse.Namespace, home: Home) -> int:
    notes = control.call(home.control_socket, "note.list", {"room": args.room})
    if args.json:
        _print_json(notes)
        return 0
    for note in notes:
        print(f"{note['title'] or '(untitled)':<30} {note['note_id']}  {note['length']} chars")
    return 0


def cmd_note_cat(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "note.cat", {"note": args.note})
    sys.stdout.write(result["text"])
    if result["text"] and not result["text"].endswith("\n"):
        sys.stdout.write("\n")
    return 0


def cmd_note_append(args: argparse.Namespace, home: Home) -> int:
    control.call(home.control_socket, "note.append", {"note": args.note, "text": args.text})
    return 0


def cmd_note_import(args: argparse.Namespace, home: Home) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    request = {"room": args.room, "title": args.file.stem, "text": text}
    print(control.call(home.control_socket, "note.import", request)["note_id"])
    return 0


def cmd_note_export(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "note.export", {"note": args.note})
    try:
        args.file.write_text(result["text"], encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.file}: {exc.strerror or exc}") from exc
    print(f"wrote {len(result['text'])} characters to {args.file}")
    return 0


def cmd_status(args: argparse.Namespace, home: Home) -> int:
    status = control.call(home.control_socket, "status")
    if args.json:
        _print_json(status)
        return 0
    print(f"peer   {status['peer_id']}  {status['name']}")
    print(f"listen {status['address']}")
    print(f"links  {len(status['links'])}")
    for link in status["links"]:
        print(f"  {link['direction']:<8} {link['peer_id']}  {link['address']}")
    print(f"routes {len(status['routes'])}")
    for route in status["routes"]:
        print(f"  {route['dest'][:12]}  via {route['next_hop'][:12]}  hops {route['hops']}")
    counters = ", ".join(f"{k}={v}" for k, v in status["counters"].items())
    print(f"counters {counters or '(none)'}")
    caches = ", ".join(
        f"{name} {c['size']}/{c['bound']}"
        for name, c in status["caches"].items()
        if isinstance(c, dict) and "size" in c
    )
    print(f"caches {caches}")
    rooms = status.get("rooms")
    if rooms:
        print(f"rooms  {rooms['mode']} (now: {rooms['routing']})")
    return 0


def cmd_ping(args: argparse.Namespace, home: Home) -> int:
    if not 1 <= args.count <= MAX_PING_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_PING_COUNT}")
    request = {
        "peer": args.peer,
        "count": args.count,
        "interval": args.interval,
        "timeout": args.timeout,
    }
    wait = args.count * (args.timeout + args.interval) + 10
    results = control.call(home.control_socket, "ping", request, timeout=wait)
    replies = [{"rtt_ms": r["rtt_ms"], "hops": r["hops"]} for r in results if not r.get("lost")]
    lost = len(results) - len(replies)
    if args.json:
        _print_json(replies)
    else:
        for r in results:
            if r.get("lost"):
                print(f"seq={r['seq']} no reply within {args.timeout:g} s")
            else:
                print(f"seq={r['seq']} hops={r['hops']} time={r['rtt_ms']:.2f} ms")
    if lost:
        print(f"{PROG}: {lost} of {len(results)} pings got no reply", file=sys.stderr)
    return 0 if replies else 1


def cmd_connect(args: argparse.Namespace, home: Home) -> int:
    address = PeerAddress.parse(args.address)  # check locally first: clearer errors
    result = control.call(home.control_socket, "connect", {"address": str(address)})
    print(f"dialing {result['dialing']}")
    return 0


def cmd_contacts(args: argparse.Namespace, home: Home) -> int:
    sock = home.control_socket
    if args.action == "add":
        result: Any = control.call(sock, "contacts.add", {"peer": args.peer, "name": args.name})
    elif args.action == "verify":
        result = control.call(
            sock, "contacts.verify", {"peer": args.peer, "verified": not args.undo}
        )
    else:
        result = control.call(sock, "contacts.list")
    if args.json:
        _print_json(result)
        return 0
    for contact in result if isinstance(result, list) else [result]:
        mark = "verified" if contact["verified"] else "unverified"
        name = contact["name"] or "-"
        print(f"{name:<16} {contact['peer_id']}  {mark}  safety number {contact['safety_number']}")
    return 0


def cmd_dm(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "dm", {"peer": args.peer, "text": args.text})
    print(result["id"])
    return 0


def cmd_say(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "say", {"room": args.room, "text": args.text})
    print(result["id"])
    return 0


def cmd_history(args: argparse.Namespace, home: Home) -> int:
    request = {"conversation": args.conversation, "limit": args.limit}
    messages = control.call(home.control_socket, "history", request)
    if args.json:
        _print_json([{k: m[k] for k in ("id", "author", "text", "ts", "status")} for m in messages])
        return 0
    names = {c["peer_id"]: c["name"] for c in control.call(home.control_socket, "contacts.list")}
    me = home.public_info()[0]
    for m in messages:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["ts"] / 1000))
        who = "me" if m["author"] == me else names.get(m["author"]) or m["author"][:8]
        print(f"[{when}] {who}: {m['text']}  ({m['status']})")
    return 0


def cmd_room_new(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "room.new", {"name": args.name})
    if args.json:
        _print_json(result)
    else:
        print(result["room_id"])
    return 0


def cmd_room_invite(args: argparse.Namespace, home: Home) -> int:
    result = control.call(
        home.control_socket, "room.invite", {"room": args.room, "peer": args.peer}
    )
    print(f"invited {result['invited']}")
    return 0


def cmd_room_remove(args: argparse.Namespace, home: Home) -> int:
    result = control.call(
        home.control_socket, "room.remove", {"room": args.room, "peer": args.peer}
    )
    print(f"removed {result['removed']}; the room is now at key epoch {result['epoch']}")
    return 0


def cmd_room_join(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "room.join", {"room": args.room})
    print(f"joined {result['room_id']}")
    return 0


def cmd_room_handover(args: argparse.Namespace, home: Home) -> int:
    result = control.call(
        home.control_socket, "room.handover", {"room": args.room, "peer": args.peer}
    )
    print(f"{result['admin']} is now the admin of {result['room_id']}")
    return 0


def cmd_room_leave(args: argparse.Namespace, home: Home) -> int:
    result = control.call(home.control_socket, "room.leave", {"room": args.room})
    print(f"left {result['room_id']}")
    return 0


def cmd_room_list(args: argparse.Namespace, home: Home) -> int:
    rooms = control.call(home.control_socket, "room.list")
    if args.json:
        _print_json(rooms)
        return 0
    for room in rooms:
        print(
            f"{room['name']:<20} {room['room_id']}  {room['state']:<8} "
            f"{len(room['members'])} members, epoch {room['epoch']}"
        )
    return 0


def cmd_demo(args: argparse.Namespace, home: Home) -> int:
    from tui.demo import run_demo

    return run_demo()


def cmd_open(args: argparse.Namespace, home: Home) -> int:
    """No verb: the terminal UI on the home, with a node listening on a free loopback port."""
    config = NodeConfig(listen=("127.0.0.1", 0))
    return _run_app(Session.for_home(home, config, passphrase=_passphrase(args)))


# -- entry point ----------------------------------------------------------------


def _setup_logging(
    args: argparse.Namespace, home: Home, func: Callable[[argparse.Namespace, Home], int]
) -> None:
    """Logs go to stderr, except under the terminal UI, where they would garble the screen:
    there they go to meshnotes.log in the home (the demo's homes are temporary: none)."""
    level = args.log_level or ("info" if args.verb == "run" else "warning")
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    with_ui = func in (cmd_open, cmd_demo) or (func is cmd_run and not args.headless)
    if not with_ui:
        logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    elif func is cmd_demo:
        logging.basicConfig(level=logging.CRITICAL, handlers=[logging.NullHandler()])
    else:
        home.ensure()
        log_file = home.root / "meshnotes.log"
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        logging.basicConfig(level=level.upper(), format=fmt, filename=str(log_file))
    if level != "debug":  # its per-connection chatter is noise next to ours
        logging.getLogger("websockets").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (never raise at the user)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        home = Home.resolve(args.home)
        func: Callable[[argparse.Namespace, Home], int] = getattr(args, "func", cmd_open)
        _setup_logging(args, home, func)
        return func(args, home)
    except MeshError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1 if not isinstance(exc, UsageError) else 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, with the way to see more
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.exception("internal error")
        print(f"{PROG}: internal error: {exc!r} (run with --log-level debug)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
