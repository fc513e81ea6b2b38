"""The ``note`` verbs: new, list, cat, append, import, export."""

from __future__ import annotations

import argparse
import json
import sys

from crdt.textfiles import read_text_file, write_text_file
from mesh.runtime.home import Home
from tui.verbs import client, print_json
from tui.verbs.offline import reader


def cmd_note_new(args: argparse.Namespace, home: Home) -> int:
    result = client(home).note_new(args.room, args.title)
    print(json.dumps(result) if args.json else result["note_id"])
    return 0


def cmd_note_list(args: argparse.Namespace, home: Home) -> int:
    notes = reader(home).note_list(args.room)
    if args.json:
        print_json(notes)
        return 0
    for note in notes:
        print(f"{note['title'] or '(untitled)':<30} {note['note_id']}  {note['length']} chars")
    return 0


def cmd_note_cat(args: argparse.Namespace, home: Home) -> int:
    result = reader(home).note_cat(args.note)
    sys.stdout.write(result["text"])
    if result["text"] and not result["text"].endswith("\n"):
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
    count = write_text_file(args.file, reader(home).note_export(args.note)["text"])
    print(f"wrote {count} characters to {args.file}")
    return 0
