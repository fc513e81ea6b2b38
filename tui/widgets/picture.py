"""A picture under its message, drawn where the terminal can (textual-image), else nothing.

textual-image picks how to draw when it is imported: the Kitty graphics
protocol or Sixel where the terminal answers for them, else Unicode blocks.
Only the first two draw a picture worth showing; elsewhere the message keeps
its placeholder (tui.widgets.format.attachment_text). It asks the terminal at
import, which it can no longer do once Textual runs, and a terminal that does
not answer costs it its timeouts (0.3 s). So :func:`probe` asks in a thread
while the node starts, and :func:`can_draw` waits for the answer; without a
probe (an app under Pilot) the first :func:`can_draw` asks.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.widget import Widget

log = logging.getLogger("meshnotes.tui")

#: whether this terminal draws pictures: known once asked (:func:`can_draw`)
DRAWS = False
#: the largest picture opened for a preview (it is opened in memory)
PREVIEW_MAX = 8 * 1024 * 1024

_asked = threading.Event()
_asking: threading.Thread | None = None


def probe() -> None:
    """Start asking the terminal what it draws, in a thread: call it before Textual runs,
    and after anything else has read the terminal (a passphrase)."""
    global _asking
    if _asking is None and not _asked.is_set():
        _asking = threading.Thread(target=_ask, name="picture-probe", daemon=True)
        _asking.start()


def _ask() -> None:
    global DRAWS
    try:
        # no textual in these imports (the main thread imports it meanwhile): the renderable
        # picks the protocol; the cell size, cached, is the widget's question
        from textual_image._terminal import get_cell_size
        from textual_image.renderable import Image as chosen
        from textual_image.renderable.sixel import Image as sixel
        from textual_image.renderable.tgp import Image as kitty

        get_cell_size()
        DRAWS = chosen in (sixel, kitty)
    except Exception as exc:  # not installed, or no terminal to ask (stdout closed): no pictures
        log.info("no picture previews: %s", exc)
        DRAWS = False
    finally:
        _asked.set()


def can_draw() -> bool:
    """Whether this terminal draws pictures (where it does not, messages show a placeholder)."""
    if not _asked.is_set():
        if _asking is None:
            _ask()
        _asked.wait()
    return DRAWS


def picture(data: bytes) -> Widget | None:
    """A widget drawing the picture in `data` (None: not a picture Pillow reads)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError
    from textual_image.widget import Image as ImageWidget

    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.info("no preview: %s", exc)
        return None
    widget: Widget = ImageWidget(image, classes="picture")
    return widget
