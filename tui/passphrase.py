"""The home's passphrase as the front ends get it: given, or asked for on the terminal.

A passphrase comes from ``--passphrase-file`` or ``$MESHNOTES_PASSPHRASE``
(:meth:`mesh.runtime.home.Home.passphrase`); when neither gives one and the home
needs it (its database is encrypted), a terminal is asked once. The readers that
open the database without a node (``history``, ``contacts``, ``note cat`` …, and
the UI attached to a running node) need it too: the key is in the key file.
"""

from __future__ import annotations

import sys

from mesh.errors import UsageError
from mesh.runtime.home import Home

#: said once per home (by init or by the UI, whichever comes first)
UNENCRYPTED_NOTICE = (
    "the database and key file in {root} are not encrypted (no passphrase); "
    "set one with 'meshnotes passphrase'"
)
_TOLD = ".told-unencrypted"


def given_or_asked(home: Home, prompt: str = "passphrase: ") -> str | None:
    """The home's passphrase; asked on the terminal if none was given and the home
    needs one (its key file is sealed)."""
    given = home.passphrase()
    if given is not None or not home.locked():
        return given
    if not sys.stdin.isatty():
        return None  # the caller's error says how to give it
    try:
        import getpass  # only when asking: termios and the rest, not for a plain home

        return getpass.getpass(f"{home.root} {prompt}")
    except (EOFError, KeyboardInterrupt) as exc:
        raise UsageError("no passphrase given") from exc


def store_key(home: Home) -> bytes | None:
    """The key of the home's database (None: not encrypted), for the readers."""
    if not home.store_encrypted():
        return None
    return home.unlock(given_or_asked(home))[1]


def unencrypted_notice(home: Home) -> str | None:
    """The notice that the home is stored in the clear, the first time only (then None)."""
    if home.store_encrypted() or (home.root / _TOLD).exists():
        return None
    try:
        (home.root / _TOLD).touch(mode=0o600)
    except OSError:
        return None  # not said rather than said at every start
    return UNENCRYPTED_NOTICE.format(root=home.root)
