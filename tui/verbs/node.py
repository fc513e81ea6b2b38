"""The node's verbs: init, id, run, bridge-token, demo, the UI, status, ping, connect."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from typing import Any

from chat.daemon import MAX_PING_COUNT, Daemon
from crdt.bridge import bridge_token
from mesh.errors import MeshError, NodeNotRunningError, UsageError
from mesh.runtime.home import Home
from mesh.runtime.interfaces import reachable_urls
from mesh.runtime.settings import Settings, write_default
from mesh.wire.address import PeerAddress, parse_listen
from mesh.wire.invite import is_invite
from tui.passphrase import given_or_asked, unencrypted_notice
from tui.session import LocalSession, Session
from tui.verbs import client, print_json
from tui.verbs.dials import dial_lines, report_dial
from tui.verbs.invite import accept_invite
from tui.widgets.picture import probe


def cmd_init(args: argparse.Namespace, home: Home) -> int:
    settings = Settings.load(home)  # a broken file fails before anything is made
    name = args.name or settings.values["name"]
    if not name and not home.has_identity() and sys.stdin.isatty():
        from tui.name_prompt import ask_in_terminal

        name = ask_in_terminal(os.environ.get("USER", ""))
    identity = home.create_identity(name)
    write_default(home)
    print(identity.peer_id)
    notice = unencrypted_notice(home)
    if notice:
        print(f"meshnotes: note: {notice}", file=sys.stderr)
    return 0


def cmd_id(args: argparse.Namespace, home: Home) -> int:
    """The id and name; the addresses other devices can use: the running node's, or
    (none running) the ones the configured listen address will have."""
    peer_id, name = home.public_info()
    info: dict[str, Any] = {"peer_id": peer_id, "name": name, "address": None, "addresses": []}
    running = False
    with contextlib.suppress(MeshError):
        answer = client(home).identity(timeout=5)
        info["address"] = answer["address"]
        info["addresses"] = answer.get("addresses", [])
        running = True
    if not running:
        host, port = Settings.load(home).listen
        if port:  # a free port is only known once the node runs
            info["addresses"] = [f"{url}#{peer_id}" for url in reachable_urls(host, port)]
    if args.json:
        print_json(info)
    else:
        print(peer_id + (f"  ({name})" if name else ""))
        if info["addresses"] and not running:
            print("addresses, once 'meshnotes run' runs (other devices: the first ones):")
        for address in info["addresses"]:
            print(address)
    return 0


def cmd_config(args: argparse.Namespace, home: Home) -> int:
    """The settings that apply to 'run' without flags, and where each comes from."""
    described = Settings.load(home).describe()
    if args.json:
        print_json(described)
        return 0
    exists = "" if described["file_exists"] else "  (absent: defaults apply)"
    print(f"file {described['file']}{exists}")
    width = max(len(key) for key in described["settings"])
    for key, item in described["settings"].items():
        value = item["value"]
        if isinstance(value, bool):
            shown = "on" if value else "off"
        else:
            shown = (", ".join(value) if isinstance(value, list) else value) or "(none)"
        print(f"{key:<{width}}  {shown}  [{item['source']}]")
    return 0


def _settings(args: argparse.Namespace, home: Home) -> Settings:
    """The home's settings with `run`'s flags over them."""
    settings = Settings.load(home)
    for key, given in (
        ("listen", args.listen),
        ("peers", args.peer),
        ("mesh_key_file", None if args.mesh_key_file is None else str(args.mesh_key_file)),
        ("name", args.name),
        ("rooms", args.rooms),
        ("announce_radius", args.announce_radius),
        ("lan", False if getattr(args, "no_lan", False) else None),
    ):
        if given is not None:
            settings.override(key, given)
    return settings


def _check_port_free(host: str, port: int, settings: Settings) -> None:
    """Fail with one line naming the flag to change it if `host:port` is taken, before
    anything (an identity, a database) is created for a node that cannot start."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    for family, kind, proto, _, sockaddr in infos[:1]:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener does
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                where = (
                    "--listen"
                    if settings.sources["listen"] == "flag"
                    else (f"--listen HOST:PORT, or 'listen' in {settings.path}")
                )
                raise UsageError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                    f"choose another port with {where}"
                ) from exc


def cmd_run(args: argparse.Namespace, home: Home) -> int:
    settings = _settings(args, home)
    config = settings.node_config()
    config.auto_connect = not args.no_auto_connect
    bridge = parse_listen(args.yjs_bridge) if args.yjs_bridge else None
    _check_port_free(*settings.listen, settings)
    name = settings.values["name"]
    session = LocalSession.for_home(home, config, bridge, name, given_or_asked(home))
    write_default(home)
    if not args.headless:
        session.notice = unencrypted_notice(home)
        return _run_app(session, settings.values["bell"])
    return asyncio.run(_run_until_signal(session.daemon))


def _node_running(home: Home) -> bool:
    """Whether a node answers on the home's control socket."""
    if not home.control_socket.exists():
        return False
    try:
        client(home).identity(timeout=5)
    except NodeNotRunningError:
        return False
    return True


def _run_app(session: Session, bell: bool = True) -> int:
    from tui.widgets.picture import can_draw

    probe()  # unless asked already: the terminal answers while Textual is imported
    from tui.app import MeshnotesApp

    can_draw()  # the answer, before Textual takes the terminal

    app = MeshnotesApp(session, bell=bell)
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
        for other in daemon.node.addresses_for_others[1:]:
            print(f"  also at {other}")
        sys.stdout.flush()
        await stop.wait()
    return 0


def cmd_bridge_token(args: argparse.Namespace, home: Home) -> int:
    home.public_info()  # a home with an identity, or one clear error
    print(bridge_token(home.root / "bridge.token"))
    return 0


def cmd_demo(args: argparse.Namespace, home: Home) -> int:
    from tui.demo import run_demo

    return run_demo()


def cmd_open(args: argparse.Namespace, home: Home) -> int:
    """No verb: the terminal UI on the home. Where the home's node runs (``run --headless``)
    the UI attaches to it, and quitting leaves it running; else the UI runs a node itself, as
    the config file says (by default on every interface at the default port)."""
    settings = Settings.load(home)
    if _node_running(home):
        from tui.attached import AttachedSession

        attached = AttachedSession(home)
        attached.notice = unencrypted_notice(home)
        return _run_app(attached, settings.values["bell"])
    _check_port_free(*settings.listen, settings)
    name = settings.values["name"]
    if not name and not home.has_identity() and sys.stdin.isatty():
        from tui.name_prompt import ask_in_ui  # the first start: who is this?

        name = ask_in_ui(os.environ.get("USER", ""))
    passphrase = given_or_asked(home)
    probe()  # the terminal is asked what it draws while the node starts (tui.widgets.picture)
    session = LocalSession.for_home(home, settings.node_config(), None, name, passphrase)
    write_default(home)
    session.notice = unencrypted_notice(home)
    return _run_app(session, settings.values["bell"])


def cmd_status(args: argparse.Namespace, home: Home) -> int:
    status = client(home).status()
    if args.json:
        print_json(status)
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
    for line in dial_lines(status.get("dials", [])):
        print(line)
    rooms = status.get("rooms")
    if rooms:
        print(f"rooms  {rooms['mode']} (now: {rooms['routing']})")
    return 0


def cmd_ping(args: argparse.Namespace, home: Home) -> int:
    """One ping at a time, each printed as its reply (or its timeout) comes, then a
    ping(8)-style summary; Ctrl-C ends early with the summary of what came (exit 130)."""
    if not 1 <= args.count <= MAX_PING_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_PING_COUNT}")
    if not (0 <= args.interval <= 60 and 0 < args.timeout <= 300):
        raise UsageError("--interval must be 0..60 s and --timeout 0..300 s")
    node = client(home)
    results: list[dict[str, Any]] = []
    interrupted = False
    try:
        for seq in range(1, args.count + 1):
            if seq > 1:
                time.sleep(args.interval)
            [result] = node.ping(args.peer, 1, 0.0, args.timeout)
            results.append(result := {**result, "seq": seq})
            if not args.json:
                print(_ping_line(result, args.timeout), flush=True)
    except KeyboardInterrupt:
        interrupted = True
    replies = [{"rtt_ms": r["rtt_ms"], "hops": r["hops"]} for r in results if not r.get("lost")]
    if args.json:
        print_json(replies)
    else:
        for line in _ping_summary(args.peer, len(results), [r["rtt_ms"] for r in replies]):
            print(line)
    if interrupted:
        return 130
    return 0 if replies else 1


def _ping_line(result: dict[str, Any], timeout: float) -> str:
    if result.get("lost"):
        return f"seq={result['seq']} no reply within {timeout:g} s"
    return f"seq={result['seq']} hops={result['hops']} time={result['rtt_ms']:.2f} ms"


def _ping_summary(peer: str, sent: int, rtts: list[float]) -> list[str]:
    """The closing lines, as ping(8) prints them: counts, loss, and round trips."""
    loss = 100 * (sent - len(rtts)) / sent if sent else 0
    lines = [
        f"--- {peer} ping statistics ---",
        f"{sent} sent, {len(rtts)} received, {loss:.0f}% loss",
    ]
    if rtts:
        low, mean, high = min(rtts), sum(rtts) / len(rtts), max(rtts)
        lines.append(f"rtt min/avg/max = {low:.2f}/{mean:.2f}/{high:.2f} ms")
    return lines


def cmd_connect(args: argparse.Namespace, home: Home) -> int:
    if is_invite(args.address):
        return accept_invite(args, home, args.address, add=False)
    address = PeerAddress.parse(args.address)  # check locally first: clearer errors
    result = client(home).connect(str(address), wait=args.wait)
    return report_dial(result, args.wait)
