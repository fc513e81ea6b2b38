"""Attachments between real nodes on loopback: integrity, swarms, offline peers, members, quotas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chat.daemon import Daemon
from chat.files import wire
from chat.files.service import FilesConfig
from mesh.errors import UsageError
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, EnvelopeType
from mesh.wire.identity import decode_peer_id
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with

#: no automatic fetch: the test says when
MANUAL = FilesConfig(auto_download=0)


def state(daemon: Daemon, file_id: str) -> str:
    return str(daemon.files.holdings.row(file_id)["state"])  # type: ignore[index]


def kept(daemon: Daemon, file_id: str) -> bool:
    row = daemon.files.holdings.row(file_id)
    return row is not None and row["state"] == "complete"


def make_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


async def saved(daemon: Daemon, file_id: str, out: Path) -> bytes:
    result = await daemon.files.save(file_id, str(out))
    return Path(result["path"]).read_bytes()


async def test_a_file_crosses_a_relay_that_keeps_nothing_of_it(mesh: Mesh, tmp_path: Path) -> None:
    a, b, c = await mesh.line("A", "B", "C")
    await wait_until(lambda: a.node.router.route_to(c.node.identity.public_key, a.node.clock()))
    data = make_file(tmp_path / "photo.jpg", 300_000)  # five chunks, the last one short
    sent = await a.files.send(mesh.ids["C"], str(tmp_path / "photo.jpg"))

    await wait_until(lambda: kept(c, sent["file_id"]), what="C fetches it on its own")
    assert await saved(c, sent["file_id"], tmp_path / "out.jpg") == data
    shown = [f for f in c.files.list() if f["file_id"] == sent["file_id"]]
    assert shown[0]["name"] == "photo.jpg" and shown[0]["mime"] == "image/jpeg"
    assert shown[0]["have_bytes"] == 300_000 and shown[0]["msg_id"] == sent["message_id"]
    # the relay passed sealed chunks on and knows no file: no row, no bytes
    assert b.files.list() == [] and not any((mesh.root / "B" / "files").glob("*"))
    assert b.node.router.counters["relayed"] > 0
    # what C's copy says on disk is sealed: not a byte of the file in the clear
    sealed = (mesh.root / "C" / "files" / f"{sent['file_id']}.sealed").read_bytes()
    assert data[:4096] not in sealed


async def test_a_tampered_chunk_is_refused_and_its_sender_banned(
    mesh: Mesh, tmp_path: Path
) -> None:
    a = await mesh.start("A")
    b = await mesh.start("B", dial="A")
    c = await mesh.start("C", dial="A", files=MANUAL)
    c.node.connect(PeerAddress.parse(mesh.addresses["B"]))
    room = await room_with(mesh, "A", ["B", "C"])
    data = make_file(tmp_path / "report.pdf", 40 * 65536)
    sent = await a.files.send(room, str(tmp_path / "report.pdf"))
    file_id = sent["file_id"]
    await wait_until(lambda: kept(b, file_id), what="B fetches it")
    await wait_until(lambda: c.files.holdings.row(file_id) is not None, what="C hears of it")
    # A's kept copy goes bad on disk: every chunk it sends now fails the tree
    sealed = mesh.root / "A" / "files" / f"{file_id}.sealed"
    sealed.write_bytes(bytes(x ^ 0x55 for x in sealed.read_bytes()))
    c.files.fetch(file_id)

    await wait_until(lambda: kept(c, file_id), timeout=60, what="C gets it from B")
    assert await saved(c, file_id, tmp_path / "out.pdf") == data
    counters = c.node.router.counters
    assert c.files.counters["files_chunks_bad"] >= 1
    assert counters["penalised_bad_chunk"] == c.files.counters["files_chunks_bad"]
    a_key = a.node.identity.public_key
    if counters["penalised_bad_chunk"] >= 4:  # 25 points each, ban at 100
        assert c.node.router.is_banned(a_key, c.node.clock())
    else:
        assert c.node.router.penalties[a_key].current(c.node.clock()) > 0
    assert b.files.counters["files_chunks_served"] > 0


async def test_a_fourth_peer_fetches_from_three_holders_at_once(mesh: Mesh, tmp_path: Path) -> None:
    a = await mesh.start("A")
    b = await mesh.start("B", dial="A")
    d = await mesh.start("D", dial="B")
    f = await mesh.start("F", dial="A", files=MANUAL)
    for other in ("B", "D"):
        f.node.connect(PeerAddress.parse(mesh.addresses[other]))
    room = await room_with(mesh, "A", ["B", "D", "F"])
    data = make_file(tmp_path / "video.mp4", 96 * 65536)
    file_id = (await a.files.send(room, str(tmp_path / "video.mp4")))["file_id"]
    await wait_until(lambda: kept(b, file_id) and kept(d, file_id), timeout=60)
    await wait_until(lambda: len(f.node.conns) == 3, what="F linked to A, B and D")
    served = {n: mesh[n].files.counters.get("files_chunks_served", 0) for n in "ABD"}

    f.files.fetch(file_id)
    await wait_until(lambda: kept(f, file_id), timeout=60, what="F fetches it")
    assert await saved(f, file_id, tmp_path) == data
    for name in "ABD":
        assert mesh[name].files.counters.get("files_chunks_served", 0) > served[name], name


async def test_a_peer_halfway_through_a_fetch_serves_the_chunks_it_has(
    mesh: Mesh, tmp_path: Path
) -> None:
    slow = FilesConfig(request_rate=16.0, request_burst=16.0)  # A serves 16 chunks a second
    a = await mesh.start("A", files=slow)
    b = await mesh.start("B", dial="A", files=MANUAL)
    d = await mesh.start("D", dial="B", files=MANUAL)  # linked to B only
    room = await room_with(mesh, "A", ["B", "D"])
    data = make_file(tmp_path / "film.mkv", 96 * 65536)
    file_id = (await a.files.send(room, str(tmp_path / "film.mkv")))["file_id"]
    await wait_until(lambda: all(n.files.holdings.row(file_id) for n in (b, d)))
    b.files.fetch(file_id)
    await wait_until(
        lambda: len(b.files.holdings.held(file_id)) >= 24, timeout=60, what="B a quarter in"
    )
    await mesh.stop("A")  # the only whole copy is gone
    halfway = b.files.holdings.held(file_id)
    assert len(halfway) < 96

    d.files.fetch(file_id)
    await wait_until(
        lambda: d.files.holdings.held(file_id) >= halfway,
        timeout=60,
        what="D fetches from B what B has",
    )
    assert b.files.counters["files_chunks_served_partial"] >= len(halfway)
    assert state(d, file_id) == "fetching"
    # A comes back: both finish, and what B fetches now still passes on to D
    await mesh.start("A", files=slow)
    await wait_until(lambda: kept(b, file_id) and kept(d, file_id), timeout=120)
    assert await saved(d, file_id, tmp_path) == data
    assert b.files.counters["files_have_updates_sent"] > 0


async def test_a_recipient_offline_when_it_was_sent_gets_it_later_through_the_mesh(
    mesh: Mesh, tmp_path: Path
) -> None:
    from mesh.runtime.home import Home

    await mesh.line("A", "B")
    c_id = Home(mesh.root / "C").create_identity("C").peer_id
    data = make_file(tmp_path / "notes.txt", 200_000)
    file_id = (await mesh["A"].files.send(c_id, str(tmp_path / "notes.txt")))["file_id"]
    c = await mesh.start("C", dial="B")
    await wait_until(lambda: kept(c, file_id), timeout=60, what="C fetches it through B")
    assert await saved(c, file_id, tmp_path / "notes.txt.out") == data
    assert mesh["B"].files.list() == []


async def test_a_removed_member_never_learns_of_later_files_nor_gets_their_chunks(
    mesh: Mesh, tmp_path: Path
) -> None:
    a, b, c = await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B", "C"])
    a.chat.rooms.remove(room, mesh.ids["C"])
    await wait_until(
        lambda: decode_peer_id(mesh.ids["C"]) not in b.chat.rooms.state(room).members,
        what="B sees C removed",
    )
    make_file(tmp_path / "plans.txt", 100_000)
    file_id = (await a.files.send(room, str(tmp_path / "plans.txt")))["file_id"]
    await wait_until(lambda: kept(b, file_id), what="B, still a member, fetches it")
    # the key travels only in the room's sealed message: C never gets it, nor the file's row
    assert c.files.list() == []
    with pytest.raises(UsageError, match="no file"):
        c.files.fetch(file_id)
    # told the id some other way, C asks A for chunks: refused, nothing sent
    root = bytes.fromhex(file_id)
    for payload in (wire.Query(root).encode(), wire.Want.of(root, [0, 1]).encode()):
        c.node.send(
            c.node.router.make(
                EnvelopeType.FILE,
                c.node.clock(),
                dest_kind=DestKind.PEER,
                dest=a.node.identity.public_key,
                payload=payload,
            )
        )
    await wait_until(lambda: a.files.counters.get("files_refused_not_member", 0) == 2)
    await wait_until(
        lambda: c.files.counters.get("files_refused_by_peer_not_member", 0) == 2,
        what="C hears both refusals",
    )
    assert c.files.counters.get("files_chunks_unasked", 0) == 0  # not one chunk came


async def test_held_files_stay_within_the_byte_budget(mesh: Mesh, tmp_path: Path) -> None:
    a = await mesh.start("A", files=FilesConfig(budget=1_000_000))
    b = await mesh.start("B", dial="A", files=FilesConfig(budget=300_000))
    sent = []
    for n in range(3):  # 120 kB each: two fit in B's budget, the third only by evicting one
        make_file(tmp_path / f"f{n}.bin", 120_000)
        sent.append((await a.files.send(mesh.ids["B"], str(tmp_path / f"f{n}.bin")))["file_id"])
        await wait_until(lambda f=sent[-1]: kept(b, f), what=f"B keeps file {n}")
    assert [state(b, f) for f in sent] == ["evicted", "complete", "complete"]
    assert not (mesh.root / "B" / "files" / f"{sent[0]}.sealed").exists()
    assert b.files.holdings.held_bytes() <= 300_000
    # A's own files are never evicted for others: all three are still served
    assert [state(a, f) for f in sent] == ["complete"] * 3

    make_file(tmp_path / "big.bin", 400_000)  # more than B's whole budget
    big = (await a.files.send(mesh.ids["B"], str(tmp_path / "big.bin")))["file_id"]
    await wait_until(lambda: b.files.holdings.row(big) is not None, what="B hears of it")
    assert state(b, big) == "over_budget"
    with pytest.raises(UsageError, match="does not fit in the file budget"):
        b.files.fetch(big)
    assert [state(b, f) for f in sent] == ["evicted", "complete", "complete"]  # nothing lost
    # the evicted one can be fetched again, evicting the oldest kept
    b.files.fetch(sent[0])
    await wait_until(lambda: kept(b, sent[0]), what="B fetches the evicted file again")
    assert [state(b, f) for f in sent] == ["complete", "evicted", "complete"]

    make_file(tmp_path / "huge.bin", 1_100_000)
    with pytest.raises(UsageError, match="does not fit in the file budget"):
        await a.files.send(mesh.ids["B"], str(tmp_path / "huge.bin"))
