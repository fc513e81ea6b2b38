"""The node's verbs: init, id, run, bridge-token, demo, the UI, status, ping, connect."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from chat.daemon import MAX_PING_COUNT, Daemon
from crdt.bridge import bridge_token
from mesh.errors import MeshError, UsageError
from mesh.routing.router import room_routing
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress, parse_listen
from mesh.wire.invite import is_invite
from mesh.wire.netkey import DEFAULT_NETWORK_KEY, load_network_key
from tui.session import Session
from tui.verbs import PROG, client, print_json
from tui.verbs.dials import dial_lines, report_dial
from tui.verbs.invite import accept_invite


def _passphrase(args: argparse.Namespace) -> str | None:
    if args.passphrase_file is None:
        return None
    try:
        return str(args.passphrase_file.read_text().rstrip("\n"))
    except OSError as exc:
        raise UsageError(f"cannot read the passphrase file: {exc.strerror or exc}") from exc


def cmd_init(args: argparse.Namespace, home: Home) -> int:
    identity = home.create_identity(args.name, _passphrase(args))
    print(identity.peer_id)
    return 0


def cmd_id(args: argparse.Namespace, home: Home) -> int:
    peer_id, name = home.public_info()
    info: dict[str, Any] = {"peer_id": peer_id, "name": name, "address": None}
    with contextlib.suppress(MeshError):
        info["address"] = client(home).identity(timeout=5)["address"]
    if args.json:
        print_json(info)
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


def cmd_demo(args: argparse.Namespace, home: Home) -> int:
    from tui.demo import run_demo

    return run_demo()


def cmd_open(args: argparse.Namespace, home: Home) -> int:
    """No verb: the terminal UI on the home, with a node listening on a free loopback port."""
    config = NodeConfig(listen=("127.0.0.1", 0))
    return _run_app(Session.for_home(home, config, passphrase=_passphrase(args)))


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
    rooms = status.get("rooms")
    if rooms:
        print(f"rooms  {rooms['mode']} (now: {rooms['routing']})")
    return 0


def cmd_ping(args: argparse.Namespace, home: Home) -> int:
    if not 1 <= args.count <= MAX_PING_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_PING_COUNT}")
    results = client(home).ping(args.peer, args.count, args.interval, args.timeout)
    replies = [{"rtt_ms": r["rtt_ms"], "hops": r["hops"]} for r in results if not r.get("lost")]
    lost = len(results) - len(replies)
    if args.json:
        print_json(replies)
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
    if is_invite(args.address):
        return accept_invite(args, home, args.address, add=False)
    address = PeerAddress.parse(args.address)  # check locally first: clearer errors
    result = client(home).connect(str(address), wait=args.wait)
    return report_dial(result, args.wait)
    for line in dial_lines(status.get("dials", [])):
        print(line)
