"""The attachment verbs: ``send-file``, ``files list``, ``files get``, ``files link``.

``send-file`` needs the running node (it signs and sends). ``files list`` and
``files get`` ask it when it answers; without one they read the home's
database read-only, and ``files get`` then writes out a file only if its
sealed copy is already kept (fetching needs the node).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chat.client import Verb
from chat.files.export import export_file, human_size
from chat.files.holdings import Holdings
from chat.files.links import file_link
from mesh.errors import NodeNotRunningError, UsageError
from mesh.runtime import control
from mesh.runtime.home import Home
from tui.passphrase import store_key
from tui.verbs import client, print_json
from tui.widgets.format import progress_line

#: seconds between progress lines
PROGRESS_EVERY = 0.5


def cmd_send_file(args: argparse.Namespace, home: Home) -> int:
    path = Path(args.path).expanduser().resolve()  # the node runs elsewhere: an absolute path
    if not path.is_file():
        raise UsageError(f"{args.path} is not a readable file")
    result = asyncio.run(_send_showing_progress(home, args.to, str(path)))
    if args.json:
        print(json.dumps({"file_id": result["file_id"], "message_id": result["message_id"]}))
    else:
        print(f"sent {result['name']} ({human_size(result['size'])}) as {result['file_id']}")
    return 0


async def _send_showing_progress(home: Home, to: str, path: str) -> dict[str, Any]:
    """Ask the node to send `path`, with a progress line (stderr) while it seals it."""
    events = await control.subscribe(home.control_socket, {"files"})
    progress = Progress()

    async def show() -> None:
        async for event in events:
            shown = event["data"]
            if event["event"] == "file_sealing" and shown.get("path") == path:
                progress.show(shown, final=shown["have_bytes"] >= shown["size"])

    shower = asyncio.create_task(show())
    try:
        result: dict[str, Any] = await control.request(
            home.control_socket, Verb.FILES_SEND, {"to": to, "path": path}, timeout=600
        )
    finally:
        await events.close()
        with contextlib.suppress(asyncio.CancelledError):
            await shower
    progress.end()
    return result


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, a line every
    :data:`PROGRESS_EVERY` seconds (and the last) elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown_at = 0.0
        self.last: dict[str, Any] | None = None

    def show(self, shown: dict[str, Any], final: bool = False) -> None:
        self.last = shown
        now = time.monotonic()
        if not final and now - self.shown_at < PROGRESS_EVERY:
            return
        self.shown_at = now
        line = progress_line(shown)
        sys.stderr.write(f"\r{line}" if self.tty else f"{line}\n")
        sys.stderr.flush()

    def end(self) -> None:
        """Finish the line on a terminal."""
        if self.tty and self.last is not None:
            sys.stderr.write("\r" + progress_line(self.last) + "\n")


@contextlib.contextmanager
def _offline(home: Home) -> Iterator[Holdings]:
    store = home.open_store_readonly(store_key(home))
    try:
        yield Holdings(store, home.root / "files", budget=0)
    finally:
        store.close()


def cmd_files_list(args: argparse.Namespace, home: Home) -> int:
    try:
        files = client(home).files_list()
    except NodeNotRunningError:
        with _offline(home) as holdings:
            files = holdings.all()
    keys = ("file_id", "name", "size", "state", "have_bytes")
    if args.json:
        print_json([{k: f[k] for k in keys} for f in files])
        return 0
    if not files:
        print("no files yet")
    for f in files:
        share = f"{100 * f['have_bytes'] // max(1, f['size'])}%"
        print(
            f"{f['file_id'][:16]}  {f['state']:<11} {share:>4}  {human_size(f['size']):>10}"
            f"  {f['name']}"
        )
    return 0


def cmd_files_get(args: argparse.Namespace, home: Home) -> int:
    out = Path(args.out).expanduser().resolve()
    node = client(home)
    try:
        shown = node.files_fetch(args.file)
    except NodeNotRunningError:
        with _offline(home) as holdings:
            row = holdings.resolve(args.file)
            if row["state"] != "complete":
                raise UsageError(
                    f"{row['name']} is not kept here yet: start the node (meshnotes run) to fetch"
                    " it"
                ) from None
            written = export_file(holdings.chunks, holdings.descriptor(row), out)
        print(f"saved {written}")
        return 0
    end = None if args.timeout is None else time.monotonic() + args.timeout
    progress = Progress()
    while shown["state"] == "fetching":
        progress.show(shown, final=True)  # each poll waits PROGRESS_EVERY already
        if end is not None and time.monotonic() > end:
            raise UsageError(f"{shown['name']} did not arrive within {args.timeout:g} s")
        shown = node.files_fetch(args.file, wait=PROGRESS_EVERY)
    progress.last = shown
    progress.end()
    if shown["state"] != "complete":
        raise UsageError(f"{shown['name']} is {shown['state']}")
    result = node.files_save(args.file, str(out))
    print(f"saved {result['path']}")
    return 0


def cmd_files_link(args: argparse.Namespace, home: Home) -> int:
    """The Markdown link to a file known here, for a note (docs/files.md, *Links from notes*)."""
    with _offline(home) as holdings:
        row = holdings.resolve(args.file)
    link = file_link(row["name"], row["file_id"])
    if args.json:
        print(json.dumps({"file_id": row["file_id"], "name": row["name"], "link": link}))
    else:
        print(link)
    return 0
