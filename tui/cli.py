"""The ``meshnotes`` command line: one verb per job, one clear line per error.

Verbs that act (send, connect, invite, ...) talk to the running node through the
home's control socket; ``run`` starts that node. Reads (history, contacts, room
list, note list/cat/export) ask the node when one runs and read the home's
database otherwise (:mod:`tui.verbs.offline`). The arguments are defined in
:mod:`tui.parser`, the verbs in :mod:`tui.verbs`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from mesh.errors import MeshError, UsageError
from mesh.runtime.home import Home
from tui.parser import OPEN, build_parser, named_verb
from tui.verbs import PROG, Verb


def _with_ui(args: argparse.Namespace, func: Verb) -> bool:
    """Whether the verb runs the terminal UI."""
    return func.name in ("cmd_open", "cmd_demo") or (func.name == "cmd_run" and not args.headless)


def _probe_early(home: Home, func: Verb) -> None:
    """Under the UI, the terminal is asked what pictures it draws (tui.widgets.picture) while
    the node's modules are imported, unless something else asks the terminal first: the
    first start's name, or the passphrase of a sealed key file (the verb probes after)."""
    from tui.widgets.picture import probe  # only under the UI

    if func.name == "cmd_demo" or (
        home.has_identity() and (home.passphrase() is not None or not home.locked())
    ):
        probe()


def _setup_logging(args: argparse.Namespace, home: Home, func: Verb) -> None:
    """Logs go to stderr, except under the terminal UI, where they would garble the screen:
    there they go to meshnotes.log in the home (the demo's homes are temporary: none).

    Any other verb given no --log-level configures nothing: Python's last-resort handler
    prints its warnings and errors on stderr, bare, and a read such as ``history`` does
    not import logging at all (about 8 ms of its start)."""
    with_ui = _with_ui(args, func)
    if not with_ui and args.verb != "run" and args.log_level is None:
        return
    import logging

    level = args.log_level or ("info" if args.verb == "run" else "warning")
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    if not with_ui:
        logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    elif func.name == "cmd_demo":
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
    try:
        code = _run(argv)
    except SystemExit:  # argparse: --help, or a usage error
        if _reader_gone():
            raise SystemExit(SIGPIPE_STATUS) from None
        raise
    return SIGPIPE_STATUS if _reader_gone() else code


#: the status a shell reports for a process ended by SIGPIPE (`... | head -1`)
SIGPIPE_STATUS = 141


def _reader_gone() -> bool:
    """Flush what is left for stdout; whether its reader went away (then stdout points at
    nothing, so the interpreter's last flush does not fail again)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_nothing()
        return True
    return False


def _stdout_to_nothing() -> None:
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(named_verb(argv))
    try:
        args = parser.parse_args(argv)
        home = Home.resolve(args.home, args.passphrase_file)
        func: Verb = getattr(args, "func", OPEN)
        _setup_logging(args, home, func)
        if _with_ui(args, func):
            _probe_early(home, func)
        return func(args, home)
    except MeshError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1 if not isinstance(exc, UsageError) else 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of a long output went away while we wrote
        _stdout_to_nothing()
        return SIGPIPE_STATUS
    except Exception as exc:  # a bug: still one line, with the way to see more
        import logging

        if logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.exception("internal error")
        print(f"{PROG}: internal error: {exc!r} (run with --log-level debug)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
