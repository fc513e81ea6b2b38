"""A room bot: joins the rooms it is invited to and answers "ping" and "!time" there.

Start it next to your own running node (`meshnotes run --headless` prints that address):

    python examples/room_bot.py --home ~/mesh/bot --peer ws://127.0.0.1:8000#YOURPEERID

It prints its peer id; invite it and talk to it from your home:

    meshnotes room new lobby
    meshnotes room invite lobby BOTPEERID
    meshnotes say lobby ping            # the bot says "pong"; "!time" gets the time

Invitations from the bot's contacts are accepted by the chat layer; this bot also
accepts everyone else's (chat.rooms.join), so run it only where that is what you want.
`--demo` runs the bot and a user peer in one process: the user makes a room, invites
the bot, says "ping", prints the answer and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from chat.daemon import Daemon
from chat.messages import Chat
from mesh.errors import MeshError
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress


def reply_to(text: str) -> str | None:
    if "!time" in text:
        return time.strftime("the time is %Y-%m-%d %H:%M:%S %Z")
    return "pong" if "ping" in text.lower() else None


def attach_bot(chat: Chat) -> None:
    """Join invited rooms and answer room messages; work runs outside the chat callbacks."""
    loop = asyncio.get_running_loop()

    def accept(room_id: str) -> None:
        # the chat layer has already joined if the inviter is a contact
        if chat.identity.public_key not in chat.rooms.state(room_id).members:
            chat.rooms.join(room_id)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "invite":
            loop.call_soon(guarded, accept, data["room_id"])
        elif kind == "message" and data["author"] != chat.me:
            answer = reply_to(data["text"])
            room = chat.rooms.conversation(data["conv_id"])
            if answer and room is not None and room["kind"] == "room":
                loop.call_soon(guarded, chat.say, data["conv_id"], answer)

    chat.listeners.append(on_event)
    for room in chat.rooms.all():  # invitations that arrived before a restart
        if room["state"] == "invited":
            guarded(accept, room["room_id"])


def guarded(fn: Any, *args: str) -> None:
    try:
        fn(*args)
    except MeshError as exc:
        print(f"room_bot: {exc}")


async def start(home: Home, config: NodeConfig) -> Daemon:
    identity = home.load_identity() if home.has_identity() else home.create_identity("room-bot")
    daemon = Daemon(home, identity, config)
    await daemon.start()
    return daemon


async def demo(tmp: Path) -> None:
    user = await start(Home(tmp / "user"), NodeConfig(auto_connect=False))
    peers = [PeerAddress.parse(str(user.node.address))]
    bot = await start(Home(tmp / "bot"), NodeConfig(auto_connect=False, peers=peers))
    attach_bot(bot.chat)
    answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    joined = asyncio.Event()
    bot_key = bot.node.identity.public_key

    def on_user_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "room" and bot_key in user.chat.rooms.state(data["room_id"]).members:
            joined.set()
        elif kind == "message" and data["author"] == bot.chat.me and not answered.done():
            answered.set_result(data["text"])

    user.chat.listeners.append(on_user_event)
    try:
        room = user.chat.rooms.new("lobby")
        user.chat.rooms.invite(room, bot.chat.me)
        await asyncio.wait_for(joined.wait(), 30)
        user.chat.say(room, "ping")
        print(f"user said: ping\nbot answered: {await asyncio.wait_for(answered, 30)}")
    finally:
        await bot.stop()
        await user.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="the bot's home directory (created if missing)")
    parser.add_argument("--peer", action="append", default=[], help="ws://HOST:PORT#PEERID")
    parser.add_argument("--demo", action="store_true", help="bot and user in one process")
    args = parser.parse_args()
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="mn-bot-") as tmp:
            await demo(Path(tmp))
        return
    if not args.home or not args.peer:
        parser.error("--home and --peer are required (or use --demo)")
    peers = [PeerAddress.parse(text) for text in args.peer]
    bot = await start(Home.resolve(args.home), NodeConfig(peers=peers))
    attach_bot(bot.chat)
    print(f"room bot {bot.chat.me} listening on {bot.node.address}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await bot.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except MeshError as exc:
        raise SystemExit(f"room_bot: {exc}") from None
