"""The ``meshnotes`` argument parser: the options before the verb, and the verbs.

Each verb's arguments are in :mod:`tui.arguments`, its work is a function in
:mod:`tui.verbs`; ``args.func`` names it (:class:`tui.verbs.Verb`: its module
is imported when it runs), so that a command imports only what its own verb
needs. A command that names its verb gets a parser of that verb alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mesh.errors import UsageError
from mesh.runtime.home import PASSPHRASE_ENV
from tui.arguments import NODE, VERBS
from tui.verbs import PROG, Verb

#: what ``meshnotes`` with no verb runs: the terminal UI
OPEN = Verb(NODE, "cmd_open")
#: the options before the verb that take a value
VALUED = ("--home", "--log-level", "--passphrase-file")


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
    None when it names none, or asks for the help of them all (``--help`` before it)."""
    tokens = iter(argv)
    for token in tokens:
        if token in ("--", "-h") or (len(token) > 3 and "--help".startswith(token)):
            return None
        if token.startswith("-"):
            # argparse takes an unambiguous prefix of an option (--ho for --home)
            if "=" not in token and len(token) > 2 and any(o.startswith(token) for o in VALUED):
                next(tokens, None)
            continue
        return token
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every verb; with `only` (the verb of the command to parse, from
    :func:`named_verb`), the parser of that verb alone when it is one. ``run`` has its
    options only when it is parsed or every verb is (they import the node's settings)."""
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
    one = only in {name for name, _, _ in VERBS}
    for name, about, add in VERBS:
        if one and name != only:
            continue  # a command that names its verb is parsed by that verb's parser alone
        p = verbs.add_parser(name, help=about)
        if name != "run" or only in (None, "run"):  # run's options import the node's settings
            add(p)
    return parser
