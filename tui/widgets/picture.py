"""A picture under its message, drawn where the terminal can (textual-image), else nothing.

textual-image picks how to draw when it is imported: the Kitty graphics
protocol or Sixel where the terminal answers for them, else Unicode blocks.
Only the first two draw a picture worth showing; elsewhere the message keeps
its placeholder (tui.widgets.format.attachment_text). It asks the terminal at
import, which it can no longer do once Textual runs: this module is imported
with the chat view's, before the app starts.
"""

from __future__ import annotations

import io
import logging

from textual.widget import Widget

log = logging.getLogger("meshnotes.tui")

try:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError
    from textual_image.renderable import Image as _Chosen
    from textual_image.renderable.sixel import Image as _Sixel
    from textual_image.renderable.tgp import Image as _Kitty
    from textual_image.widget import Image as _ImageWidget

    DRAWS = _Chosen in (_Sixel, _Kitty)
except Exception as exc:  # not installed, or no terminal to ask (stdout closed): no pictures
    log.info("no picture previews: %s", exc)
    DRAWS = False

#: the largest picture opened for a preview (it is opened in memory)
PREVIEW_MAX = 8 * 1024 * 1024


def can_draw() -> bool:
    """Whether this terminal draws pictures (where it does not, messages show a placeholder)."""
    return DRAWS


def picture(data: bytes) -> Widget | None:
    """A widget drawing the picture in `data` (None: not a picture Pillow reads)."""
    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.info("no preview: %s", exc)
        return None
    widget: Widget = _ImageWidget(image, classes="picture")
    return widget
