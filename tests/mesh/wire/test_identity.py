"""Tests for mesh.wire.identity: peer ids, X25519 derivation, safety numbers, key files."""

from __future__ import annotations

import base64
import json
import re
import stat

import nacl.bindings
import pytest

from mesh.errors import IdentityError, MeshError, UsageError
from mesh.wire.identity import (
    PEER_ID_LENGTH,
    Identity,
    decode_peer_id,
    encode_peer_id,
    safety_number,
    short_id,
)

SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))
ALICE = Identity.from_seed(SEED_A, "alice")
BOB = Identity.from_seed(SEED_B, "bob")
# Computed once from the seeds above; the peer id is base32 of the public key.
ALICE_PUB = bytes.fromhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
ALICE_ID = "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a"
PASSPHRASE = "correct horse battery staple"


# --- peer ids -----------------------------------------------------------------


def test_peer_id_is_52_lowercase_base32_chars_of_the_public_key() -> None:
    assert ALICE.public_key == ALICE_PUB
    assert ALICE.peer_id == ALICE_ID
    assert len(ALICE_ID) == PEER_ID_LENGTH == 52
    assert re.fullmatch(r"[a-z2-7]{52}", ALICE_ID)
    assert encode_peer_id(ALICE_PUB) == ALICE_ID
    # RFC 4648 base32, padding dropped
    assert base64.b32encode(ALICE_PUB).decode().rstrip("=").lower() == ALICE_ID


@pytest.mark.parametrize("seed", [bytes(32), b"\xff" * 32, SEED_A, SEED_B])
def test_peer_id_round_trips(seed: bytes) -> None:
    key = Identity.from_seed(seed).public_key
    assert decode_peer_id(encode_peer_id(key)) == key
    assert decode_peer_id(encode_peer_id(key).upper()) == key  # case does not matter
    assert decode_peer_id(f"  {encode_peer_id(key)}\n") == key  # pasted with whitespace


def test_short_id_is_the_first_eight_chars() -> None:
    assert short_id(ALICE_ID) == ALICE_ID[:8]


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_encode_peer_id_rejects_keys_that_are_not_32_bytes(size: int) -> None:
    with pytest.raises(UsageError, match="32 bytes"):
        encode_peer_id(bytes(size))


@pytest.mark.parametrize(
    "text",
    ["", ALICE_ID[:-1], ALICE_ID + "a", ALICE_ID * 2, ALICE_ID[:8]],
)
def test_decode_peer_id_rejects_wrong_length(text: str) -> None:
    with pytest.raises(UsageError, match="52 characters"):
        decode_peer_id(text)


@pytest.mark.parametrize(
    "text",
    [
        "0" + ALICE_ID[1:],  # 0, 1, 8, 9 are not in the base32 alphabet
        ALICE_ID[:10] + "1" + ALICE_ID[11:],
        ALICE_ID[:10] + "8" + ALICE_ID[11:],
        ALICE_ID[:51] + "=",
        ALICE_ID[:20] + "-" + ALICE_ID[21:],
        ALICE_ID[:20] + "é" + ALICE_ID[21:],
        "=" * 52,
    ],
)
def test_decode_peer_id_rejects_bad_characters(text: str) -> None:
    with pytest.raises(UsageError, match="peer id"):
        decode_peer_id(text)


def test_decode_peer_id_rejects_non_canonical_trailing_bits() -> None:
    # 52 base32 chars hold 260 bits; the last char's low 4 bits must be zero.
    assert ALICE_ID[-1] == "a"
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for char in alphabet[1:16]:  # same top bit as "a", some low bit set
        with pytest.raises(UsageError, match="not a peer id"):
            decode_peer_id(ALICE_ID[:-1] + char)


# --- X25519 twin --------------------------------------------------------------


def test_x25519_keys_match_libsodium_conversion() -> None:
    for ident in (ALICE, BOB):
        sk64 = bytes(ident.signing_key) + ident.public_key
        assert ident.x25519_private_key == nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(sk64)
        assert ident.x25519_public_key == nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(
            ident.public_key
        )
        # the pair belongs together
        assert nacl.bindings.crypto_scalarmult_base(ident.x25519_private_key) == (
            ident.x25519_public_key
        )


def test_x25519_twins_agree_on_a_shared_secret() -> None:
    ab = nacl.bindings.crypto_scalarmult(ALICE.x25519_private_key, BOB.x25519_public_key)
    ba = nacl.bindings.crypto_scalarmult(BOB.x25519_private_key, ALICE.x25519_public_key)
    assert ab == ba


def test_from_seed_rejects_wrong_seed_length() -> None:
    with pytest.raises(UsageError):
        Identity.from_seed(bytes(31))


def test_sign_is_a_detached_ed25519_signature() -> None:
    sig = ALICE.sign(b"message")
    assert len(sig) == 64
    assert nacl.bindings.crypto_sign_open(sig + b"message", ALICE.public_key) == b"message"


# --- safety numbers -----------------------------------------------------------


def test_safety_number_is_symmetric() -> None:
    assert ALICE.safety_number_with(BOB.public_key) == BOB.safety_number_with(ALICE.public_key)
    assert safety_number(ALICE.public_key, BOB.public_key) == safety_number(
        BOB.public_key, ALICE.public_key
    )


def test_safety_number_has_six_groups_of_five_digits() -> None:
    code = safety_number(ALICE.public_key, BOB.public_key)
    assert re.fullmatch(r"\d{5}( \d{5}){5}", code)
    # pinned: a change here breaks every safety number users already compared
    assert code == "15539 05496 92087 57028 22643 52081"


def test_safety_number_differs_between_pairs() -> None:
    carol = Identity.from_seed(bytes(range(64, 96)))
    codes = {
        safety_number(ALICE.public_key, BOB.public_key),
        safety_number(ALICE.public_key, carol.public_key),
        safety_number(BOB.public_key, carol.public_key),
    }
    assert len(codes) == 3


# --- key files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def locked_file(tmp_path_factory: pytest.TempPathFactory):
    """One passphrase-protected key file for the module (argon2id is slow on purpose)."""
    path = tmp_path_factory.mktemp("locked") / "identity.json"
    ALICE.save(path, PASSPHRASE)
    return path


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_plain_key_file_round_trips(tmp_path) -> None:
    path = tmp_path / "home" / "identity.json"  # parent directories are created
    ALICE.save(path)
    loaded = Identity.load(path)
    assert loaded.public_key == ALICE.public_key
    assert bytes(loaded.signing_key) == SEED_A
    assert loaded.name == "alice"
    assert _mode(path) == 0o600
    record = json.loads(path.read_text())
    assert record["peer_id"] == ALICE_ID
    assert record["seed"]["kdf"] == "none"


def test_saving_over_a_world_readable_file_leaves_it_0600(tmp_path) -> None:
    path = tmp_path / "identity.json"
    path.write_text("old")
    path.chmod(0o644)
    ALICE.save(path)
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["identity.json"]  # no temp file left


def test_passphrase_key_file_round_trips(locked_file) -> None:
    loaded = Identity.load(locked_file, PASSPHRASE)
    assert bytes(loaded.signing_key) == SEED_A
    assert loaded.name == "alice"
    assert _mode(locked_file) == 0o600
    assert json.loads(locked_file.read_text())["seed"]["kdf"] == "argon2id"


def test_passphrase_file_does_not_contain_the_seed(locked_file) -> None:
    text = locked_file.read_text()
    raw = locked_file.read_bytes()
    for needle in (
        base64.b64encode(SEED_A).decode(),
        base64.b64encode(SEED_A).decode().rstrip("="),
        base64.urlsafe_b64encode(SEED_A).decode().rstrip("="),
        SEED_A.hex(),
        SEED_A.hex().upper(),
        base64.b32encode(SEED_A).decode().rstrip("="),
    ):
        assert needle not in text
        assert needle.lower() not in text.lower()
    assert SEED_A not in raw
    # nor any base64 field that decodes to it
    record = json.loads(text)
    for value in record["seed"].values():
        if isinstance(value, str):
            assert SEED_A not in base64.b64decode(value)


def test_wrong_passphrase_is_an_identity_error(locked_file) -> None:
    with pytest.raises(IdentityError, match="wrong passphrase"):
        Identity.load(locked_file, "not the passphrase")


@pytest.mark.parametrize("passphrase", [None, ""])
def test_locked_file_without_passphrase_is_an_identity_error(locked_file, passphrase) -> None:
    with pytest.raises(IdentityError, match="locked"):
        Identity.load(locked_file, passphrase)


def test_missing_key_file_is_an_identity_error(tmp_path) -> None:
    with pytest.raises(IdentityError, match="no identity"):
        Identity.load(tmp_path / "nope.json")


def _plain_record() -> dict:
    return {
        "version": 1,
        "peer_id": ALICE_ID,
        "name": "alice",
        "seed": {"kdf": "none", "plain": base64.b64encode(SEED_A).decode()},
    }


def _with(**changes) -> bytes:
    record = _plain_record()
    seed = dict(record["seed"])  # type: ignore[arg-type]
    for key, value in changes.items():
        if key.startswith("seed_"):
            seed[key[5:]] = value
        else:
            record[key] = value
    record["seed"] = seed
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"{not json",
        b"[]",
        b'"a string"',
        b"42",
        b"null",
        b"{}",
        b'{"seed": "plain"}',
        b'{"seed": {}}',
        b'{"seed": {"kdf": "none"}}',
        b'{"seed": null}',
        _with(seed_plain="not base64!!"),
        _with(seed_plain=base64.b64encode(SEED_A[:31]).decode()),
        _with(seed_plain=42),
        _with(seed_plain=None),
        _with(seed_kdf="scrypt"),
        _with(seed_kdf=None),
        _with(peer_id=encode_peer_id(BOB.public_key)),
    ],
)
def test_corrupt_key_file_is_an_identity_error(tmp_path, content: bytes) -> None:
    path = tmp_path / "identity.json"
    path.write_bytes(content)
    with pytest.raises(IdentityError):
        Identity.load(path)


def test_corrupt_locked_key_file_is_an_identity_error(tmp_path, locked_file) -> None:
    record = json.loads(locked_file.read_text())
    seed = record["seed"]
    variants = [
        {**seed, "sealed": "not base64!!"},
        {**seed, "salt": "not base64!!"},
        {**seed, "salt": base64.b64encode(b"short").decode()},
        {**seed, "opslimit": "many"},
        {**seed, "sealed": base64.b64encode(b"x" * 10).decode()},
        {k: v for k, v in seed.items() if k != "sealed"},
    ]
    path = tmp_path / "identity.json"
    for variant in variants:
        path.write_text(json.dumps({**record, "seed": variant}))
        with pytest.raises(IdentityError):
            Identity.load(path, PASSPHRASE)


def test_unreadable_key_file_is_an_identity_error(tmp_path) -> None:
    # a directory where the file should be: an OSError, translated
    path = tmp_path / "identity.json"
    path.mkdir()
    with pytest.raises(IdentityError):
        Identity.load(path)


def test_identity_error_is_a_mesh_error() -> None:
    assert issubclass(IdentityError, MeshError)
