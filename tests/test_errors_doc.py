"""docs/errors.md is generated from tests/cases/bad, and is up to date.

Oracle: the corpus itself (tests/test_bad_cases.py checks that archgraph prints exactly those
lines) and tests/cases/errors_doc.py's index, which must describe every case.
"""

from __future__ import annotations

from tests.cases import errors_doc


def test_every_case_is_described_in_the_index():
    stems = {path.stem for path in errors_doc.cases()}
    assert stems == set(errors_doc.INDEX), (
        f"not in INDEX: {sorted(stems - set(errors_doc.INDEX))}; gone: {sorted(set(errors_doc.INDEX) - stems)}")
    assert {section for section, _ in errors_doc.INDEX.values()} == set(errors_doc.SECTIONS)


def test_the_page_is_up_to_date():
    assert errors_doc.PAGE.read_text(encoding="utf-8") == errors_doc.render(), (
        "docs/errors.md is out of date: run python -m tests.cases.errors_doc")


def test_the_page_shows_every_case_and_its_lines():
    page = errors_doc.render()
    for path in errors_doc.cases():
        assert f"(../tests/cases/bad/{path.name})" in page
        for line in path.with_suffix(".expected").read_text().splitlines():
            assert line.replace("{file}", path.name) in page
