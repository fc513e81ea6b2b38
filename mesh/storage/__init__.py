"""What a node keeps on disk: the SQLite store, mailboxes for peers away, room logs for
catch-up, and the stranger pool that bounds what others can make it keep. It knows no
payload format of the layers above."""
