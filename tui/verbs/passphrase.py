"""``meshnotes passphrase``: set, change or remove the home's passphrase.

One passphrase seals the key file and, in it, the key the database is
encrypted with. Changing it re-encrypts the whole database under a fresh key
(mesh/storage/rekey.py: a verified copy first, then the key file as the commit
point, then the copy in place of the original), so an interruption at any
moment loses nothing: the next writer (this verb again, or the node starting)
finishes or undoes it. The node must not run meanwhile: this verb holds the
home's control socket, so none can start either.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import socket
import sys
from collections.abc import Iterator

import nacl.utils

from mesh.errors import UsageError
from mesh.runtime.home import Home
from mesh.storage import rekey
from tui.passphrase import given_or_asked


@contextlib.contextmanager
def _node_kept_out(home: Home) -> Iterator[None]:
    """Hold the home's control socket: refuse if a node runs, and keep one from starting."""
    path = home.control_socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            pass
        else:
            raise UsageError(
                "the node of this home is running: stop it first (the database is re-encrypted)"
            )
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket of a node that is gone
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder.bind(str(path))
        holder.listen(1)
        yield
    finally:
        holder.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _new_passphrase(args: argparse.Namespace) -> str:
    if args.new_passphrase_file is not None:
        try:
            new = str(args.new_passphrase_file.read_text().rstrip("\n"))
        except OSError as exc:
            raise UsageError(f"cannot read the new passphrase file: {exc.strerror or exc}") from exc
    elif sys.stdin.isatty():
        try:
            new = getpass.getpass("new passphrase: ")
            if getpass.getpass("new passphrase again: ") != new:
                raise UsageError("the two new passphrases differ; nothing changed")
        except (EOFError, KeyboardInterrupt) as exc:
            raise UsageError("no new passphrase given; nothing changed") from exc
    else:
        raise UsageError("give the new passphrase with --new-passphrase-file (or use --remove)")
    if not new:
        raise UsageError("the new passphrase is empty; to store without one, use --remove")
    return new


def cmd_passphrase(args: argparse.Namespace, home: Home) -> int:
    home.public_info()  # a home with an identity, or one clear error
    new = None if args.remove else _new_passphrase(args)
    with _node_kept_out(home):
        identity, old_key = home.unlock(given_or_asked(home))
        rekey.settle(home.database, old_key)  # an earlier change, interrupted
        new_key = nacl.utils.random(32) if new else None
        if home.database.exists() and (old_key is not None or new_key is not None):
            rekey.prepare(home.database, old_key, new_key)
        identity.save(home.identity_file, new, new_key)  # the commit point
        rekey.settle(home.database, new_key)
    if new:
        print(f"passphrase set; the key file and the database in {home.root} are encrypted")
    else:
        print(f"passphrase removed; the key file and the database in {home.root} are in the clear")
    return 0
