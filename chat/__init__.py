"""The encrypted chat layer, on the mesh: contacts, rooms and their authority, sender
keys, pairwise boxes, the outbox, messages and history, and the daemon that runs a
node with it. Notes (crdt) build on it; it imports only mesh."""
