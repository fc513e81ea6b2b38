"""The ``note`` verbs: new, list, cat, append, import, export."""

from __future__ import annotations

import argparse
import json
import sys
import time

from crdt.textfiles import read_text_file, write_text_file
from mesh.runtime.home import Home
from tui.verbs import client, print_json
from tui.verbs.offline import reader


def cmd_note_new(args: argparse.Namespace, home: Home) -> int:
    result = client(home).note_new(args.room, args.title)
    print(json.dumps(result) if args.json else result["note_id"])
    return 0


def cmd_note_list(args: argparse.Namespace, home: Home) -> int:
    notes = reader(home).note_list(args.room, args.all)
    if args.json:
        print_json(notes)
        return 0
    for note in notes:
        mark = "  (deleted)" if note.get("deleted") else ""
        print(
            f"{note['title'] or '(untitled)':<30} {note['note_id']}  {note['length']} chars{mark}"
        )
    return 0


def _text(args: argparse.Namespace, home: Home) -> str:
    """The note's text now, or (--version) as one of its versions was."""
    if args.version is not None:
        return str(reader(home).note_version(args.note, args.version)["text"])
    return str(reader(home).note_export(args.note)["text"])


def cmd_note_cat(args: argparse.Namespace, home: Home) -> int:
    text = _text(args, home)
    sys.stdout.write(text)
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    return 0


def cmd_note_append(args: argparse.Namespace, home: Home) -> int:
    client(home).note_append(args.note, args.text)
    return 0


def cmd_note_import(args: argparse.Namespace, home: Home) -> int:
    text = read_text_file(args.file)
    print(client(home).note_import(args.room, args.file.stem, text)["note_id"])
    return 0


def cmd_note_export(args: argparse.Namespace, home: Home) -> int:
    count = write_text_file(args.file, _text(args, home))
    print(f"wrote {count} characters to {args.file}")
    return 0


def cmd_note_rename(args: argparse.Namespace, home: Home) -> int:
    result = client(home).note_rename(args.note, args.title)
    print(json.dumps(result) if args.json else f"renamed to {result['title']!r}")
    return 0


def cmd_note_history(args: argparse.Namespace, home: Home) -> int:
    result = reader(home).note_history(args.note)
    if args.json:
        print_json(result["versions"])
        return 0
    if not result["versions"]:
        print("no versions kept yet (one is kept when a burst of edits ends)")
    for version in result["versions"]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(version["ts"]))
        print(
            f"{version['version']:>4}  {when}  {version['author'][:8]}"
            f"  {version['chars']} chars  {version['title']}"
        )
    return 0


def cmd_note_delete(args: argparse.Namespace, home: Home) -> int:
    undo = args.action == "undelete"
    result = client(home).note_delete(args.note, undo=undo)
    print(json.dumps(result) if args.json else f"{args.action}d {result['note_id']}")
    return 0


def cmd_note_restore(args: argparse.Namespace, home: Home) -> int:
    result = client(home).note_restore(args.note, args.version)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"restored version {args.version}: the note now holds {result['length']} characters")
    return 0
