"""benchmarks/scale_doc.py rewrites docs/scale.md but keeps the real-process section at its end."""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks.scale_doc as scale_doc


def test_the_real_process_section_survives_a_rewrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "scale.md"
    monkeypatch.setattr(scale_doc, "DOC", doc)
    assert scale_doc.kept_sections() == ""  # no page yet
    doc.write_text("# Scale\n\n## Results\n\nold\n")
    assert scale_doc.kept_sections() == ""  # nothing to keep
    tail = f"\n{scale_doc.KEPT}\n\n| figure | real | simulator |\n"
    doc.write_text("# Scale\n\n## Results\n\nold\n" + tail)
    assert scale_doc.kept_sections() == tail
