"""The home directory: where identities are made, and how they are sealed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.errors import IdentityError
from mesh.runtime.home import PASSPHRASE_ENV, Home


def kdf_of(home: Home) -> str:
    return str(json.loads(home.identity_file.read_text())["seed"]["kdf"])


def test_a_new_identity_is_sealed_with_the_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every way of making an identity (init, run, the UI) honours $MESHNOTES_PASSPHRASE."""
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    home = Home(tmp_path / "h")
    made = home.create_identity("a")
    assert kdf_of(home) == "argon2id"
    assert home.load_identity().peer_id == made.peer_id
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(IdentityError, match="locked"):
        home.load_identity()


def test_without_a_passphrase_the_key_file_is_plain_but_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    home = Home(tmp_path / "h")
    home.create_identity("a")
    assert kdf_of(home) == "none"
    assert home.identity_file.stat().st_mode & 0o777 == 0o600
    assert home.root.stat().st_mode & 0o777 == 0o700


def test_a_missing_identity_is_one_clear_error(tmp_path: Path) -> None:
    home = Home(tmp_path / "empty")
    for call in (home.public_info, home.load_identity):
        with pytest.raises(IdentityError, match=r"meshnotes --home .* init"):
            call()
