"""The attachment format: chunk sealing, the hash tree and its proofs, the descriptor."""

from __future__ import annotations

import hashlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.files.format import (
    CHUNK_SIZE,
    MAC_SIZE,
    Descriptor,
    HashTree,
    chunk_count,
    depth,
    leaf,
    open_chunk,
    safe_name,
    seal_chunk,
    sealed_size,
    verify,
)
from mesh.errors import ChatError

KEY = bytes(range(32))


def test_a_chunk_is_sealed_with_its_index_as_nonce_and_opens_only_at_that_index() -> None:
    sealed = seal_chunk(KEY, 7, b"hello")
    assert len(sealed) == 5 + MAC_SIZE
    assert open_chunk(KEY, 7, sealed) == b"hello"
    assert seal_chunk(KEY, 7, b"hello") == sealed  # deterministic: the key seals one file
    with pytest.raises(ChatError) as error:
        open_chunk(KEY, 8, sealed)  # a chunk moved to another place does not open
    assert error.value.reason == "bad_chunk"


def test_the_tree_of_three_leaves_is_padded_to_four_with_zero_hashes() -> None:
    leaves = [leaf(bytes([i]) * 10) for i in range(3)]

    def node(a: bytes, b: bytes) -> bytes:
        return hashlib.blake2b(b"\x01" + a + b, digest_size=32).digest()

    expected = node(node(leaves[0], leaves[1]), node(leaves[2], bytes(32)))
    tree = HashTree(leaves)
    assert tree.root == expected
    assert tree.proof(2) == [bytes(32), node(leaves[0], leaves[1])]
    assert leaves[0] == hashlib.blake2b(b"\x00" + bytes(10), digest_size=32).digest()


def test_a_single_chunk_file_has_its_leaf_as_root_and_an_empty_proof() -> None:
    tree = HashTree([leaf(b"x")])
    assert tree.root == leaf(b"x") and tree.proof(0) == []
    assert verify(tree.root, 1, 0, b"x", [])


@given(st.integers(1, 70), st.data())
def test_every_chunk_verifies_with_its_proof_and_no_other(chunks: int, data: st.DataObject) -> None:
    sealed = [i.to_bytes(4, "big") * 3 for i in range(chunks)]
    tree = HashTree([leaf(s) for s in sealed])
    index = data.draw(st.integers(0, chunks - 1))
    proof = tree.proof(index)
    assert len(proof) == depth(chunks)
    assert verify(tree.root, chunks, index, sealed[index], proof)
    assert not verify(tree.root, chunks, index, sealed[index] + b"!", proof)
    if chunks > 1:
        other = (index + 1) % chunks
        assert not verify(tree.root, chunks, other, sealed[index], proof)
        assert not verify(tree.root, chunks, index, sealed[index], proof[:-1])


def test_chunk_sizes_follow_the_file_size() -> None:
    assert chunk_count(0) == 1 and sealed_size(0, 0) == MAC_SIZE
    assert chunk_count(CHUNK_SIZE) == 1 and chunk_count(CHUNK_SIZE + 1) == 2
    assert sealed_size(CHUNK_SIZE + 1, 0) == CHUNK_SIZE + MAC_SIZE
    assert sealed_size(CHUNK_SIZE + 1, 1) == 1 + MAC_SIZE


def test_a_descriptor_round_trips_and_anything_else_is_malformed() -> None:
    descriptor = Descriptor("a.png", 10, "image/png", bytes(32), KEY)
    assert Descriptor.decode(descriptor.encode()) == descriptor
    assert descriptor.file_id == "00" * 32
    good = msgpack.unpackb(descriptor.encode())
    for change in (
        {"v": 2},
        {"n": ""},
        {"z": -1},
        {"r": bytes(31)},
        {"k": "key"},
        {"m": "x" * 200},
    ):
        with pytest.raises(ChatError) as error:
            Descriptor.decode(msgpack.packb({**good, **change}))
        assert error.value.reason == "malformed"
    with pytest.raises(ChatError):
        Descriptor.decode(b"\xc1")


def test_a_received_name_loses_its_directories_and_control_characters() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\x\\a.txt") == "a.txt"
    assert safe_name("bad\x1b[2Jname") == "bad[2Jname"
    assert safe_name("..") == "attachment"
    assert Descriptor.decode(Descriptor("../x", 1, "", bytes(32), KEY).encode()).name == "x"
