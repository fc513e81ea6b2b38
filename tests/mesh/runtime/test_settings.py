"""The config file's reading: defaults, the file, flags over it, and the key file's path."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path

import pytest

from mesh.errors import UsageError
from mesh.runtime.home import Home
from mesh.runtime.settings import CONFIG_FILE, KEYS, Settings, default_text, write_default


def test_the_default_text_sets_nothing_and_names_every_key() -> None:
    assert tomllib.loads(default_text()) == {}
    assert all(f"# {key} = " in default_text() for key in KEYS)


def test_write_default_never_overwrites(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    assert write_default(home)
    (home.root / CONFIG_FILE).write_text('name = "mine"\n')
    assert not write_default(home)
    assert Settings.load(home).values["name"] == "mine"


def test_a_flag_wins_and_a_bad_flag_value_is_refused(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.ensure()
    (home.root / CONFIG_FILE).write_text('listen = "127.0.0.1:7001"\n')
    settings = Settings.load(home)
    assert settings.listen == ("127.0.0.1", 7001) and settings.sources["listen"] == "file"
    settings.override("listen", "127.0.0.1:0")
    assert settings.listen == ("127.0.0.1", 0) and settings.sources["listen"] == "flag"
    with pytest.raises(UsageError, match="HOST:PORT"):
        settings.override("listen", "nope")


def test_a_relative_mesh_key_file_is_read_beside_the_config_file(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.ensure()
    key = bytes(range(32))
    (home.root / "mesh.key").write_text(base64.b64encode(key).decode())
    (home.root / CONFIG_FILE).write_text('mesh_key_file = "mesh.key"\n')
    assert Settings.load(home).node_config().network_key == key


def test_every_default_line_uncommented_is_read_back_as_its_default(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.ensure()
    lines = [line.removeprefix("# ") for line in default_text().splitlines() if " = " in line]
    (home.root / CONFIG_FILE).write_text("\n".join(lines) + "\n")
    settings = Settings.load(home)  # a whole number written quoted would be refused here
    assert settings.values == {key: default for key, (default, _) in KEYS.items()}


def test_the_announce_radius_reaches_the_router_and_is_bounded(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.ensure()
    (home.root / CONFIG_FILE).write_text("announce_radius = 2\n")
    settings = Settings.load(home)
    assert settings.node_config().router.announce_radius == 2
    assert settings.node_config().router.room_gossip  # the rooms' mode is kept
    with pytest.raises(UsageError, match="'announce_radius' must be 0 to 8"):
        settings.override("announce_radius", 9)
    (home.root / CONFIG_FILE).write_text('announce_radius = "2"\n')
    with pytest.raises(UsageError, match="must be a whole number"):
        Settings.load(home)
