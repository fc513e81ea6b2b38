"""The attachment verbs: ``send-file``, ``files list``, ``files get``.

``send-file`` needs the running node (it signs and sends). ``files list`` and
``files get`` ask it when it answers; without one they read the home's
database read-only, and ``files get`` then writes out a file only if its
sealed copy is already kept (fetching needs the node).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from chat.files.export import export_file, human_size
from chat.files.holdings import Holdings
from mesh.errors import NodeNotRunningError, UsageError
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
    result = client(home).send_file(args.to, str(path))
    if args.json:
        print(json.dumps({"file_id": result["file_id"], "message_id": result["message_id"]}))
    else:
        print(f"sent {result['name']} ({human_size(result['size'])}) as {result['file_id']}")
    return 0


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
    tty = sys.stderr.isatty()
    while shown["state"] == "fetching":
        sys.stderr.write(("\r" if tty else "") + progress_line(shown) + ("" if tty else "\n"))
        sys.stderr.flush()
        if end is not None and time.monotonic() > end:
            raise UsageError(f"{shown['name']} did not arrive within {args.timeout:g} s")
        shown = node.files_fetch(args.file, wait=PROGRESS_EVERY)
    if tty:
        sys.stderr.write("\r" + progress_line(shown) + "\n")
    if shown["state"] != "complete":
        raise UsageError(f"{shown['name']} is {shown['state']}")
    result = node.files_save(args.file, str(out))
    print(f"saved {result['path']}")
    return 0
