"""docs/usage.md names every verb and every option that ``meshnotes --help`` has.

The parser is walked as argparse holds it (tui.parser.build_parser): each verb path (``room
handover``) must open a code span in a row of the verb table, and each of its options must be
on a line that names the verb; the global options must appear somewhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from tui.parser import build_parser

USAGE = Path(__file__).resolve().parents[1] / "docs" / "usage.md"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def options(parser: argparse.ArgumentParser) -> list[str]:
    """The long form of each option (the short form if it has none), --help aside."""
    names = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        longs = [o for o in action.option_strings if o.startswith("--")]
        names.append(longs[0] if longs else action.option_strings[0])
    return names


def verbs(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, list[str]]]:
    """Every verb path with its options, nested actions (``note new``) included."""
    for name, sub in subcommands(parser).items():
        yield " ".join((*path, name)), options(sub)
        yield from verbs(sub, (*path, name))


def test_every_verb_and_option_of_the_parser_is_in_usage_md() -> None:
    text = USAGE.read_text(encoding="utf-8")
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    parser = build_parser()
    missing = [o for o in options(parser) if f"`{o}" not in text and f" {o}" not in text]
    for path, opts in verbs(parser):
        if not any(f"`{path}" in row.split(" | ")[0] for row in rows):
            missing.append(f"verb {path!r}")
            continue
        naming = [line for line in lines if f"`{path}" in line]
        missing += [f"{path} {o}" for o in opts if not any(o in line for line in naming)]
    assert not missing, f"docs/usage.md lacks: {missing}"
