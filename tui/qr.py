"""Invite codes drawn as QR codes in the terminal (segno), for the CLI and the UI alike."""

from __future__ import annotations

import io


def qr_text(code: str) -> str:
    """`code` as a QR code drawn with Unicode half blocks (two module rows per line, no
    escape codes). It carries the uppercase form, which QR's alphanumeric mode holds in
    fewer modules; invite codes decode regardless of case."""
    import segno  # only when a code is shown: it adds 16 ms to every start otherwise

    qr = segno.make(code.upper(), micro=False)
    out = io.StringIO()
    qr.terminal(out=out, compact=True)
    return out.getvalue()
