"""The home's config file, ``meshnotes.toml``: what ``meshnotes run`` does without flags.

Each setting comes from a flag given on the command line, else the file, else
its default; :class:`Settings` remembers which (``meshnotes config`` shows it).
``meshnotes init`` writes the file with every key commented out at its
default, so there is something to edit. Anything wrong in the file is one
:class:`~mesh.errors.UsageError` naming the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mesh.errors import MeshError, UsageError
from mesh.routing.router import ROOM_MODES, room_routing
from mesh.runtime.config import NodeConfig
from mesh.runtime.home import CONFIG_FILE, Home
from mesh.wire.address import PeerAddress, parse_listen
from mesh.wire.envelope import MAX_HOPS
from mesh.wire.netkey import DEFAULT_NETWORK_KEY, load_network_key

#: the port a node listens on unless told otherwise (not registered with IANA; unassigned)
DEFAULT_PORT = 7707
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"

#: key -> (default, what it is): the file's keys, in the order they are shown
KEYS: dict[str, tuple[Any, str]] = {
    "listen": (DEFAULT_LISTEN, "where to accept links, HOST:PORT (0.0.0.0: every interface)"),
    "peers": ([], "peers to keep a link to: ws://HOST:PORT#PEERID"),
    "mesh_key_file": ("", "a private mesh's key file (empty: the public mesh)"),
    "name": ("", "display name given to the identity `run` creates"),
    "lan": (True, "find peers on the local network and be found (mDNS)"),
    "rooms": ("auto", "how room traffic travels: " + ", ".join(ROOM_MODES)),
    "announce_radius": (
        0,
        f"links this node's announces cross, 1 to {MAX_HOPS} (0: the whole mesh); farther"
        " paths are asked for when traffic needs them (docs/scale.md)",
    ),
    "bell": (True, "ring the terminal bell in the UI when a message mentions you"),
    "read_state": (True, "tell a conversation's people how far you have read it"),
    "auto_download": (
        16 * 1024 * 1024,
        "fetch attachments up to this many bytes when they arrive (0: none; larger: files get)",
    ),
    "file_budget": (2 * 1024**3, "bytes of sealed attachments this node keeps, at most"),
}

SOURCE_DEFAULT, SOURCE_FILE, SOURCE_FLAG = "default", "file", "flag"


def config_path(home: Home) -> Path:
    return home.root / CONFIG_FILE


def default_text() -> str:
    """The file ``init`` writes: every key commented out at its default."""
    lines = [
        "# meshnotes settings. Uncomment a line to change it; a flag given to",
        "# `meshnotes run` wins over this file. `meshnotes config` shows what applies.",
        "",
    ]
    for key, (default, about) in KEYS.items():
        lines += [f"# {about}", f"# {key} = {_toml(default)}", ""]
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)  # a TOML integer: quoted, the file would refuse it uncommented
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Settings:
    """The effective settings of one home and where each came from."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, home: Home) -> Settings:
        """The defaults, overridden by the home's file if it has one."""
        settings = cls(config_path(home))
        for key, (default, _) in KEYS.items():
            settings.values[key] = default
            settings.sources[key] = SOURCE_DEFAULT
        for key, value in settings._read().items():
            settings.values[key] = value
            settings.sources[key] = SOURCE_FILE
        settings._check(settings.sources, SOURCE_FILE)
        return settings

    def _read(self) -> dict[str, Any]:
        try:
            with self.path.open("rb") as file:
                data = tomllib.load(file)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise UsageError(f"{self.path}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
        for key, value in data.items():
            default = KEYS[key][0]
            if isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
                kind = "a list of strings"
            else:
                ok = type(value) is type(default) and not (isinstance(value, int) and value < 0)
                kind = {bool: "true or false", int: "a whole number, 0 or more"}.get(
                    type(default), "a string"
                )
            if not ok:
                raise UsageError(f"{self.path}: {key!r} must be {kind}, not {value!r}")
        return data

    def override(self, key: str, value: Any) -> None:
        """A flag given on the command line: it wins over the file."""
        assert key in KEYS, key
        self.values[key] = value
        self.sources[key] = SOURCE_FLAG
        self._check({key: SOURCE_FLAG}, SOURCE_FLAG)

    def _check(self, keys: dict[str, str], source: str) -> None:
        """Parse the values of `keys` that came from `source`, to fail early and clearly."""
        for key in [k for k, s in keys.items() if s == source]:
            where = f"{self.path}: " if source == SOURCE_FILE else ""
            try:
                if key == "listen":
                    parse_listen(self.values[key])
                elif key == "peers":
                    for text in self.values[key]:
                        PeerAddress.parse(text)
                elif key == "rooms" and self.values[key] not in ROOM_MODES:
                    raise UsageError(f"'rooms' must be one of {', '.join(ROOM_MODES)}")
                elif key == "announce_radius" and not 0 <= self.values[key] <= MAX_HOPS:
                    raise UsageError(f"'announce_radius' must be 0 to {MAX_HOPS}")
            except MeshError as exc:
                raise UsageError(f"{where}{exc}") from exc

    @property
    def listen(self) -> tuple[str, int]:
        return parse_listen(self.values["listen"])

    def node_config(self) -> NodeConfig:
        """A :class:`NodeConfig` with these settings (the mesh key file is read here)."""
        key_file = self.values["mesh_key_file"]
        key = DEFAULT_NETWORK_KEY
        if key_file:
            path = Path(os.path.expanduser(key_file))
            if self.sources["mesh_key_file"] == SOURCE_FILE and not path.is_absolute():
                path = self.path.parent / path  # relative to the file that names it
            key = load_network_key(path)
        return NodeConfig(
            listen=self.listen,
            peers=[PeerAddress.parse(text) for text in self.values["peers"]],
            lan=self.values["lan"],
            network_key=key,
            router=replace(
                room_routing(self.values["rooms"]), announce_radius=self.values["announce_radius"]
            ),
        )

    def describe(self) -> dict[str, Any]:
        """``config --json``: the file, whether it exists, each setting's value and source."""
        return {
            "file": str(self.path),
            "file_exists": self.path.exists(),
            "settings": {
                key: {"value": self.values[key], "source": self.sources[key]} for key in KEYS
            },
        }


def write_default(home: Home) -> bool:
    """Write the commented default file if the home has none; return whether it did."""
    path = config_path(home)
    if path.exists():
        return False
    home.ensure()
    try:
        with path.open("x") as file:
            file.write(default_text())
    except FileExistsError:
        return False
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return True
