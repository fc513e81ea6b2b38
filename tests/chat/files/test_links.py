"""Links from notes to attachments: written, found in a text, found under a cursor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat.files.links import file_link, href_file, link_at, links

FILE_ID = "0f" * 32


def test_a_link_names_the_file_and_is_found_again() -> None:
    link = file_link("report.pdf", FILE_ID)
    assert link == f"[report.pdf](meshnotes:file/{FILE_ID})"
    text = f"See {link} and [a site](https://example.org).\n{file_link('b', 'ABCD')}"
    found = links(text)
    assert [(f.label, f.file_id) for f in found] == [("report.pdf", FILE_ID), ("b", "abcd")]
    assert text[found[0].start : found[0].end] == link


def test_brackets_and_line_ends_in_a_name_do_not_break_the_link() -> None:
    link = file_link("a [draft]\nv2", FILE_ID)
    assert [f.file_id for f in links(link)] == [FILE_ID]
    assert file_link("[]", FILE_ID).startswith("[file]")


def test_only_attachment_targets_are_taken() -> None:
    assert href_file(f"meshnotes:file/{FILE_ID}") == FILE_ID
    assert href_file(" meshnotes:file/ABCD ") == "abcd"
    others = ["https://example.org", "meshnotes:file/", "meshnotes:file/xyz1"]
    others += ["meshnotes:file/abc", f"meshnotes:note/{FILE_ID}", "meshnotes:file/" + "a" * 65]
    for other in others:
        assert href_file(other) is None
    assert links("[x](meshnotes:file/zzzz) [y](meshnotes:file/abc)") == []


def test_the_link_under_a_cursor() -> None:
    line = f"ab {file_link('f', FILE_ID)} cd"
    start = 3
    end = start + len(file_link("f", FILE_ID))
    assert link_at(line, start - 1) is None
    assert link_at(line, start) is not None and link_at(line, end) is not None  # just past it
    assert link_at(line, end + 1) is None


@given(st.text(max_size=40), st.text(alphabet="0123456789abcdef", min_size=4, max_size=64))
def test_any_name_makes_a_link_that_parses_back(name: str, file_id: str) -> None:
    found = links(f"x {file_link(name, file_id)} y")
    assert [f.file_id for f in found] == [file_id]
