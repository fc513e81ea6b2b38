"""Tests for tui.passphrase: the passphrase given or asked, and the notice said once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.runtime.home import Home
from tui.passphrase import given_or_asked, store_key, unencrypted_notice


def test_a_home_without_passphrase_is_told_once_that_it_is_not_encrypted(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.create_identity("me", passphrase="")
    notice = unencrypted_notice(home)
    assert notice is not None and "not encrypted" in notice and "meshnotes passphrase" in notice
    assert unencrypted_notice(home) is None  # said once, by init or the UI, never again
    assert store_key(home) is None


def test_an_encrypted_home_is_never_told_and_its_key_needs_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse\n")
    home = Home(tmp_path / "h", passphrase_file=secret)
    home.create_identity("me")
    assert home.store_encrypted() and unencrypted_notice(home) is None
    assert given_or_asked(home) == "correct horse"
    key = store_key(home)
    assert key is not None and len(key) == 32
    monkeypatch.delenv("MESHNOTES_PASSPHRASE", raising=False)
    unprompted = Home(home.root)  # no file, no variable, no terminal: none (the caller says so)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert given_or_asked(unprompted) is None
