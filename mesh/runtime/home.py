"""The home directory: where a peer keeps its key, database and control socket.

Chosen by ``--home DIR``, else ``$MESHNOTES_HOME``, else the platform's user
data directory. It is created owner-only (0700).

One passphrase guards a home: it seals the key file and, in it, the key the
database is encrypted with (docs/threat-model.md). It comes from
``--passphrase-file FILE`` (:attr:`Home.passphrase_file`), else
``$MESHNOTES_PASSPHRASE``; the front ends may also ask for it.

A read of the home (``meshnotes history``) loads neither PyNaCl nor platformdirs:
they are imported by the methods that need them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mesh.errors import IdentityError, StorageError, UsageError
from mesh.storage import rekey
from mesh.storage.store import Store
from mesh.wire import keyfile

if TYPE_CHECKING:
    from mesh.wire.identity import Identity

PASSPHRASE_ENV = "MESHNOTES_PASSPHRASE"
#: the settings file in a home (mesh/runtime/settings.py reads it)
CONFIG_FILE = "meshnotes.toml"


def _user_data_dir() -> str:
    import platformdirs  # only when no home is given

    return platformdirs.user_data_dir("meshnotes")


class Home(NamedTuple):
    """Paths inside one home directory. (A named tuple, not a dataclass: importing
    dataclasses took a read of history about 8 ms.)"""

    root: Path
    passphrase_file: Path | None = None

    @classmethod
    def resolve(
        cls, given: str | os.PathLike[str] | None = None, passphrase_file: Path | None = None
    ) -> Home:
        if given is None:
            given = os.environ.get("MESHNOTES_HOME") or _user_data_dir()
        return cls(Path(given).expanduser().absolute(), passphrase_file)

    def passphrase(self) -> str | None:
        """The passphrase given for this home: --passphrase-file, else $MESHNOTES_PASSPHRASE."""
        if self.passphrase_file is None:
            return os.environ.get(PASSPHRASE_ENV) or None
        try:
            return self.passphrase_file.read_text().rstrip("\n")
        except OSError as exc:
            raise UsageError(f"cannot read the passphrase file: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError("cannot read the passphrase file: it is not UTF-8 text") from exc

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
        """Make and save a new identity (sealed with the passphrase given, or else the home's);
        refuse to overwrite one. With a passphrase the database will be encrypted: the key
        file seals a fresh store key."""
        if passphrase is None:
            passphrase = self.passphrase()
        self.ensure()
        if self.has_identity():
            raise UsageError(f"{self.root} already holds an identity")
        import nacl.utils

        from mesh.wire.identity import Identity

        identity = Identity.generate(name)
        store_key = nacl.utils.random(32) if passphrase and not self.database.exists() else None
        identity.save(self.identity_file, passphrase, store_key)
        return identity

    def _require_identity(self) -> None:
        if not self.has_identity():
            raise IdentityError(
                f"no identity in {self.root}; create one with 'meshnotes --home {self.root} init'"
            )

    def public_info(self) -> tuple[str, str]:
        """The (peer id, name) of the home's identity, readable without any passphrase."""
        self._require_identity()
        return keyfile.read_public(self.identity_file)

    def load_identity(self, passphrase: str | None = None) -> Identity:
        return self.unlock(passphrase)[0]

    def unlock(self, passphrase: str | None = None) -> tuple[Identity, bytes | None]:
        """The identity and the store key (None: the database is not encrypted), unsealed
        with the passphrase given, or else the home's."""
        if passphrase is None:
            passphrase = self.passphrase()
        self._require_identity()
        from mesh.wire.identity import Identity

        return Identity.unlock(self.identity_file, passphrase)

    def locked(self) -> bool:
        """Whether the key file needs a passphrase."""
        return self.has_identity() and keyfile.is_locked(self.identity_file)

    def store_encrypted(self) -> bool:
        """Whether the database is encrypted (readable without any passphrase)."""
        return self.has_identity() and keyfile.has_store_key(self.identity_file)

    def open_store(self, key: bytes | None) -> Store:
        """The database for writing, under `key` (from :meth:`unlock`), after finishing or
        undoing a passphrase change a crash interrupted (mesh/storage/rekey.py)."""
        self._check_key(key)
        rekey.settle(self.database, key)
        return Store(self.database, key=key)

    def open_store_readonly(self, key: bytes | None) -> Store:
        """The database for reading only (a node may be writing it), under `key`."""
        self._check_key(key)
        if rekey.pending(self.database).exists() and self.database.exists():
            with contextlib.suppress(StorageError):  # an interrupted change still opens…
                return Store.open_readonly(self.database, key)
            raise StorageError(  # … or it is finished by the next writer
                "a passphrase change was interrupted: run 'meshnotes passphrase' again, or "
                "start the node once, to finish it"
            )
        return Store.open_readonly(self.database, key)

    def _check_key(self, key: bytes | None) -> None:
        if key is None and self.store_encrypted():
            raise StorageError(
                f"the database in {self.root} is encrypted: give its passphrase "
                f"({PASSPHRASE_ENV} or --passphrase-file)"
            )
