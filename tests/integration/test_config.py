"""The config file (meshnotes.toml), `meshnotes config`, a port in use, and `id --json` addresses.

Nodes here listen on 127.0.0.1 only and with LAN discovery off: nothing leaves this machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.runtime.home import Home
from mesh.runtime.settings import CONFIG_FILE, DEFAULT_PORT, KEYS
from tests.integration.test_cli_line import BASE
from tui.cli import main
from tui.parser import build_parser
from tui.verbs.node import _settings


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_init_writes_every_key_commented_at_its_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    assert run(capsys, "--home", str(home), "init")[0] == 0
    text = (home / CONFIG_FILE).read_text()
    assert tomllib.loads(text) == {}  # all commented: the defaults apply
    for key in KEYS:
        assert f"# {key} = " in text
    code, out, _ = run(capsys, "--home", str(home), "config", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["file"] == str(home / CONFIG_FILE) and shown["file_exists"]
    assert shown["settings"]["listen"] == {"value": f"0.0.0.0:{DEFAULT_PORT}", "source": "default"}
    assert {s["source"] for s in shown["settings"].values()} == {"default"}
    code, out, _ = run(capsys, "--home", str(home), "config")
    width = max(len(key) for key in KEYS)  # the keys' column is as wide as the longest
    assert f"{'listen':<{width}}  0.0.0.0:{DEFAULT_PORT}  [default]" in out.splitlines()


def test_the_file_wins_over_defaults_and_flags_over_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / CONFIG_FILE).write_text('listen = "127.0.0.1:7001"\nrooms = "tree"\nlan = false\n')
    code, out, _ = run(capsys, "--home", str(home), "config", "--json")
    settings = json.loads(out)["settings"]
    assert code == 0
    assert settings["listen"] == {"value": "127.0.0.1:7001", "source": "file"}
    assert settings["rooms"] == {"value": "tree", "source": "file"}
    assert settings["lan"] == {"value": False, "source": "file"}
    assert settings["name"] == {"value": "", "source": "default"}

    args = build_parser().parse_args(["--home", str(home), "run", "--listen", "127.0.0.1:0"])

    effective = _settings(args, Home(home))
    assert (effective.values["listen"], effective.sources["listen"]) == ("127.0.0.1:0", "flag")
    assert (effective.values["rooms"], effective.sources["rooms"]) == ("tree", "file")
    config = effective.node_config()
    assert config.listen == ("127.0.0.1", 0) and config.lan is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('listen = "127.0.0.1\n', "is not valid TOML"),
        ("listen = 7707\n", "'listen' must be a string"),
        ('listen = "nowhere"\n', "HOST:PORT"),
        ('peers = ["ws://127.0.0.1:9"]\n', "#PEERID"),
        ("lan = 1\n", "'lan' must be true or false"),
        ('rooms = "gossip"\n', "'rooms' must be one of"),
        ("colour = true\n", "unknown key 'colour'"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / CONFIG_FILE).write_text(content)
    for verb in (["config"], ["run", "--headless"]):
        code, _, err = run(capsys, "--home", str(home), *verb)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (verb, err)
        assert str(home / CONFIG_FILE) in lines[0] and message in lines[0], (verb, err)
    assert not (home / "identity.json").exists()  # `run` stopped before making anything


def test_a_port_in_use_names_the_flag_and_creates_no_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    home = tmp_path / "h"
    code, out, err = run(
        capsys, "--home", str(home), "run", "--headless", "--listen", f"127.0.0.1:{busy_port}"
    )
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert f"127.0.0.1:{busy_port}" in lines[0] and "--listen" in lines[0]
    assert not (home / "identity.json").exists()

    home.mkdir(exist_ok=True)  # from the file: the message names the file too
    (home / CONFIG_FILE).write_text(f'listen = "127.0.0.1:{busy_port}"\n')
    code, _, err = run(capsys, "--home", str(home), "run", "--headless")
    assert code == 2 and "--listen" in err and str(home / CONFIG_FILE) in err
    assert not (home / "identity.json").exists()


def test_id_lists_the_configured_addresses_non_loopback_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "h")
    code, peer_id, _ = run(capsys, "--home", home, "init")
    code, out, _ = run(capsys, "--home", home, "id", "--json")
    info = json.loads(out)
    assert code == 0 and info["address"] is None  # no node runs
    addresses = info["addresses"]
    assert addresses[-1] == f"ws://127.0.0.1:{DEFAULT_PORT}#{peer_id.strip()}"
    loopback = [a.startswith("ws://127.") for a in addresses]
    assert loopback == sorted(loopback)  # every non-loopback address before loopback


def test_id_json_gives_the_running_nodes_addresses(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / CONFIG_FILE).write_text('listen = "127.0.0.1:0"\nlan = false\n')
    node = subprocess.Popen(
        [*BASE, "--home", str(home), "run", "--headless", "--no-auto-connect"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert node.stdout is not None
        line = node.stdout.readline()  # "meshnotes node ID listening on ADDRESS"
        assert "listening on ws://127.0.0.1:" in line, line
        address = line.split()[-1]
        result = subprocess.run(
            [*BASE, "--home", str(home), "id", "--json"], capture_output=True, text=True, timeout=60
        )
        info = json.loads(result.stdout)
        assert info["address"] == address
        assert info["addresses"] == [address]
    finally:
        node.terminate()
        node.wait(30)
