"""A generated README section is written between its markers, and found when the README's copy differs."""

from __future__ import annotations

from pathlib import Path

from worker.tools.readme_sections import GeneratedSection

BEGIN, END = "<!-- begin -->", "<!-- end -->"


def test_a_section_is_written_between_its_markers_and_an_edit_is_found(tmp_path: Path) -> None:
    text = ["| a |\n"]
    section = GeneratedSection("table", BEGIN, END, lambda: text[0])
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{BEGIN}\n{END}\n\nafter\n")
    assert section.drifted(readme)
    section.write(readme)
    assert readme.read_text() == f"# title\n\nbefore\n\n{BEGIN}\n| a |\n{END}\n\nafter\n"
    assert not section.drifted(readme)
    text[0] = "| b |\n"  # the code says something else now
    assert section.drifted(readme)
    section.write(readme)
    assert not section.drifted(readme) and "| b |" in readme.read_text() and "| a |" not in readme.read_text()


def test_a_readme_without_the_markers_has_drifted(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("| a |\n")
    assert GeneratedSection("table", BEGIN, END, lambda: "| a |\n").drifted(readme)
    readme.write_text(f"{BEGIN}\n| a |\n")
    assert GeneratedSection("table", BEGIN, END, lambda: "| a |\n").drifted(readme)
