"""The home directory: where a peer keeps its key, database and control socket.

Chosen by ``--home DIR``, else ``$MESHNOTES_HOME``, else the platform's user
data directory. It is created owner-only (0700).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from mesh.errors import IdentityError, UsageError
from mesh.wire.identity import Identity

PASSPHRASE_ENV = "MESHNOTES_PASSPHRASE"


@dataclass(frozen=True)
class Home:
    """Paths inside one home directory."""

    root: Path

    @classmethod
    def resolve(cls, given: str | os.PathLike[str] | None = None) -> Home:
        if given is None:
            given = os.environ.get("MESHNOTES_HOME") or platformdirs.user_data_dir("meshnotes")
        return cls(Path(given).expanduser().absolute())

    @property
    def identity_file(self) -> Path:
        return self.root / "identity.json"

    @property
    def database(self) -> Path:
        return self.root / "meshnotes.db"

    @property
    def control_socket(self) -> Path:
        return self.root / "control.sock"

    def ensure(self) -> None:
        """Create the directory owner-only; refuse a path that is not a directory."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"the home {self.root} exists and is not a directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise UsageError(f"cannot use the home {self.root}: {exc.strerror or exc}") from exc

    def has_identity(self) -> bool:
        return self.identity_file.exists()

    def create_identity(self, name: str = "", passphrase: str | None = None) -> Identity:
        """Make and save a new identity (sealed with the passphrase given, or else the one in
        $MESHNOTES_PASSPHRASE); refuse to overwrite one."""
        if passphrase is None:
            passphrase = os.environ.get(PASSPHRASE_ENV)
        self.ensure()
        if self.has_identity():
            raise UsageError(f"{self.root} already holds an identity")
        identity = Identity.generate(name)
        identity.save(self.identity_file, passphrase)
        return identity

    def _require_identity(self) -> None:
        if not self.has_identity():
            raise IdentityError(
                f"no identity in {self.root}; create one with 'meshnotes --home {self.root} init'"
            )

    def public_info(self) -> tuple[str, str]:
        """The (peer id, name) of the home's identity, readable without any passphrase."""
        self._require_identity()
        return Identity.read_public(self.identity_file)

    def load_identity(self, passphrase: str | None = None) -> Identity:
        if passphrase is None:
            passphrase = os.environ.get(PASSPHRASE_ENV)
        self._require_identity()
        return Identity.load(self.identity_file, passphrase)
