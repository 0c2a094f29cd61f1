"""Every bad spec in tests/cases/bad is rejected by `archgraph validate` with exactly the expected lines.

Each case ``NAME.yaml`` / ``NAME.json`` has ``NAME.expected`` beside it: the exact
stderr, one ``file:line:col: error: ... (hint: ...)`` line per problem, with the
spec's path written as ``{file}``. Every location in those files was checked by hand
against the spec text (it points at the offending key or value), not copied from
the tool's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from archgraph.cli import app

CASES = Path(__file__).parent / "cases" / "bad"
SPECS = sorted(p for p in CASES.iterdir() if p.suffix in (".yaml", ".json"))

# Cases whose expected output is what the tool *should* print but does not yet.
XFAIL: dict[str, str] = {}


def _param(path: Path):
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[path.stem])] if path.stem in XFAIL else []
    return pytest.param(path, id=path.name, marks=marks)


def test_every_case_has_an_expected_file_and_there_are_enough_of_them():
    assert len(SPECS) >= 25
    assert {p.suffix for p in SPECS} == {".yaml", ".json"}
    missing = [p.name for p in SPECS if not p.with_suffix(".expected").is_file()]
    assert not missing
    orphans = [p.name for p in CASES.glob("*.expected") if not any(s.stem == p.stem for s in SPECS)]
    assert not orphans
    assert set(XFAIL) <= {p.stem for p in SPECS}


@pytest.mark.parametrize("spec", [_param(p) for p in SPECS])
def test_bad_spec(spec: Path):
    expected = spec.with_suffix(".expected").read_text().replace("{file}", str(spec)).splitlines()
    assert expected and all(line.startswith(f"{spec}:") for line in expected)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected
    assert result.exit_code == 2, result.stderr
