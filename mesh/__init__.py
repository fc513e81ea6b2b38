"""The mesh: identities, links, envelopes, routing, storage and the node that runs them.

Parts, each a package, and what each may import (checked by import-linter,
see pyproject.toml)::

    runtime    the thin asyncio node: sockets, timers, catch-up, the control socket
      |
    routing    sans-I/O: paths, repair, admission, forwarding, gossip   (stepped by tests
    storage    SQLite: the store, mailboxes, room logs, the stranger pool  and the simulator)
      |
    wire       sans-I/O: identities, network key, handshake, box-stream, links, envelopes

``mesh.errors`` is the root of the exception tree, usable from every part.
Nothing here knows chat, notes or the front ends.
"""
