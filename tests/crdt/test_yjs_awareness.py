"""Cursors between a real Yjs editor (npm yjs + y-websocket, on A's bridge) and a mesh peer (C).

A - B - C on loopback; the editor is a y-websocket client of A's Yjs bridge, run by node. It
sees C's cursor where C put it, and C sees the editor's cursor (as A's: the editor edits as A).
Skipped, with the reason, where node and npm are missing or the packages cannot be installed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Mesh
from tests.integration.test_signals import note_behind_a_bridge
from tests.waiting import wait_until

CLIENT = Path(__file__).with_name("yjs_awareness_client.cjs")
PACKAGES = ["y-websocket@1.5", "yjs@13", "ws@8"]


@pytest.fixture(scope="module")
def yjs_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The client script, next to node_modules holding yjs and y-websocket."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node or npm is not on PATH")
    root = tmp_path_factory.mktemp("yjs")
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm install took over 300 s")
    if done.returncode:
        pytest.skip(f"npm install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-200:]}")
    script = root / CLIENT.name
    shutil.copy(CLIENT, script)
    yield script


async def test_a_yjs_editor_and_a_mesh_peer_see_each_others_cursors(
    mesh: Mesh, yjs_client: Path
) -> None:
    note_id = await note_behind_a_bridge(mesh)
    notes_c = mesh.notes_of("C")
    cursors_at_c: list[dict[str, Any]] = []
    notes_c.listeners.append(lambda k, d: cursors_at_c.append(d) if k == "cursor" else None)
    bridge = mesh.notes["A"].bridge
    assert bridge is not None
    editor = await asyncio.create_subprocess_exec(
        "node",
        str(yjs_client),
        bridge.url,
        note_id,
        bridge.token,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=yjs_client.parent,
    )
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert editor.stdout is not None
        while line := await editor.stdout.readline():
            lines.append(json.loads(line))

    reader = asyncio.create_task(read())
    try:
        await wait_until(
            lambda: {"synced": True, "text": "hello world"} in lines,
            timeout=30,
            what="the editor synced with A's bridge",
        )
        # the editor's cursor (after "hello") reaches C, through A and B, as A's
        await wait_until(
            lambda: any(c["index"] == 5 for c in cursors_at_c),
            timeout=20,
            what="C sees the editor's cursor",
        )
        assert {c["peer_id"] for c in cursors_at_c} == {mesh.ids["A"]}
        # C's cursor (at the end) reaches the editor, resolved in the editor's own document
        cursors_c = mesh.notes["C"].cursors
        assert cursors_c is not None
        cursors_c.set_cursor(note_id, 11)
        await wait_until(
            lambda: any({"name": "C", "index": 11} in line.get("others", []) for line in lines),
            timeout=20,
            what="the editor sees C's cursor",
        )
    finally:
        assert editor.stdin is not None
        editor.stdin.close()
        try:
            await asyncio.wait_for(editor.wait(), 10)
        except TimeoutError:
            editor.kill()
        reader.cancel()
