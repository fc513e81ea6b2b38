"""The messages drawn line by line (tui/widgets/message_line.py): rows as measured, marks, and
the text a mouse selection copies."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.geometry import Offset
from textual.selection import Selection

from tui.widgets.message_line import MessageBlock, MessageLine, MessageList

LONG = "a long message " + " ".join(f"word{i}" for i in range(30)) + " last"


class FakeSession:
    """What a MessageLine asks of the session: names, who is me, attachments."""

    me = "me"

    def display_name(self, peer_id: str) -> str:
        return {"me": "you"}.get(peer_id, peer_id)

    def attachment(self, msg_id: str) -> dict[str, Any] | None:
        return None


def message(i: int, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m{i}",
        "author": "bob",
        "text": text,
        "ts": 1_700_000_000_000 + i,
        "status": "received",
        **extra,
    }


class Messages(App[None]):
    def __init__(self, lines: list[MessageLine]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        with MessageList():
            yield MessageBlock(self.lines)


async def test_a_block_draws_each_message_in_its_wrapped_rows_and_copies_them() -> None:
    session: Any = FakeSession()
    lines = [
        MessageLine(session, message(0, "short one")),
        MessageLine(session, message(1, LONG)),
        MessageLine(session, message(2, "hi @carol", mention=True)),
        MessageLine(session, {**message(3, "on its way"), "author": "me", "status": "pending"}),
    ]
    app = Messages(lines)
    async with app.run_test(size=(40, 30)) as pilot:
        await pilot.pause()
        block = app.query_one(MessageBlock)
        rows = [block.render_line(y).text.rstrip() for y in range(block.size.height)]
        assert block.size.height == block.height_at(block.size.width) == len(rows)
        first, count = block.row_span("m1")
        assert count > 1
        assert "a long message" in rows[first] and rows[first + count - 1].endswith("last")
        assert "short one" in rows[0]
        mention_row = rows[block.row_span("m2")[0]]
        assert mention_row.startswith("▌") and "hi @carol" in mention_row  # marked as a whole
        assert "on its way" in rows[-1]
        # a whole selection copies the rows as shown
        copied, _ = block.get_selection(Selection(None, None)) or ("", "")
        assert copied.splitlines() == rows
        part, _ = block.get_selection(Selection(Offset(2, first), Offset(9, first))) or ("", "")
        assert part == rows[first][2:9]
        # and shows as selected there only
        before = block.render_line(first)
        app.screen.selections = {block: Selection(Offset(2, first), Offset(9, first))}
        after = block.render_line(first)
        assert after.text == before.text
        assert after.crop(0, 2) == before.crop(0, 2) and after.crop(9) == before.crop(9)
        assert after.crop(2, 9) != before.crop(2, 9)
        app.screen.selections = {}
        # picking a message draws its rows on another background; the others stay
        plain = block.render_line(0)
        lines[0].set_class(True, "selected")
        await pilot.pause()
        picked = block.render_line(0)
        assert picked.text == plain.text
        assert [s.style.bgcolor for s in picked] != [s.style.bgcolor for s in plain]
        assert block.render_line(first).text.rstrip() == rows[first]


async def test_a_block_measures_again_when_a_message_changes() -> None:
    session: Any = FakeSession()
    line = MessageLine(session, message(0, "short"))
    app = Messages([line])
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.pause()
        block = app.query_one(MessageBlock)
        assert block.size.height == 1
        line.update_message(message(0, LONG, edited=True))
        await pilot.pause()
        assert block.size.height == block.row_span("m0")[1] > 1
        last = block.render_line(block.size.height - 1).text.rstrip()
        assert last.endswith("(edited)")


def test_a_message_shows_its_text_as_written_with_mentions_and_marks_styled() -> None:
    # the text is never read as markup: brackets, backslashes and tags show as typed
    session: Any = FakeSession()
    text = r"[b]not bold[/b] \[x] @carol, ok"
    shown = MessageLine(
        session,
        message(0, text, edited=True, reactions={"👍": 2, "❤": 1}, mine=["👍"]),
    ).render()
    assert shown.plain.endswith(f"bob  {text} (edited)  👍 2  ❤ 1")
    styled = {shown.plain[s.start : s.end]: s.style for s in shown.spans}
    assert styled["@carol"] == "b $accent" and styled["bob"] == "b"
    assert styled["(edited)"] == "dim" and styled["👍 2"] == "b" and "❤ 1" not in styled
    assert not any("not bold" in part for part in styled)
    # a reply: the quoted line (dimmed; a deleted one in italics) above the message
    reply = MessageLine(
        session,
        message(1, "yes", reply_to="m0", quote={"author": "me", "text": "", "deleted": True}),
    ).render()
    quote, line = reply.plain.split("\n")
    assert quote == "↳ you: message deleted" and line.endswith("bob  yes")
    styled = {reply.plain[s.start : s.end]: s.style for s in reply.spans}
    assert styled[quote] == "dim" and styled["message deleted"] == "i"
