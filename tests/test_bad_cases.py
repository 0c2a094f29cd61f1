"""Every bad spec in tests/cases/bad is rejected, by every command, with exactly the expected lines.

Each case ``NAME.yaml`` / ``NAME.json`` has ``NAME.expected`` beside it: the exact
stderr, one ``file:line:col: error: ... (hint: ...)`` line per problem, with the
spec's path written as ``{file}``. Every location in those files was checked by hand
against the spec text (it points at the offending key or value), not copied from
the tool's output.

Each case goes through every command that reads a spec (validate, expand, compile,
profile, render, weights import), each asked to write a file: all must exit with 2, print the same
lines and no traceback, and leave the output folder empty.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from archgraph.cli import app

CASES = Path(__file__).parent / "cases" / "bad"
SPECS = sorted(p for p in CASES.iterdir() if p.suffix in (".yaml", ".json"))

# Cases whose expected output is what the tool *should* print but does not yet.
XFAIL: dict[str, str] = {}

# every command that reads a spec, with the options that make it write a file (OUT: the file's stem)
WRITERS = {
    "validate": [],
    "expand": ["-o", "OUT.yaml"],
    "compile": ["--target", "source", "-o", "OUT.py"],
    "profile": ["-o", "OUT.txt"],
    "render": ["-o", "OUT.svg"],
    "weights import": ["OUT.missing.pt", "-o", "OUT.pt"],  # the spec is read before the checkpoint
}


def _leaf_commands(group=None, prefix: str = "") -> dict:
    """Every command of the CLI by its full name ('weights import'), groups unfolded."""
    group = group or typer.main.get_command(app)
    found = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found.update(_leaf_commands(command, f"{prefix}{name} "))
        else:
            found[prefix + name] = command
    return found


COMMANDS = [name for name in WRITERS if name in _leaf_commands()]


def _param(path: Path, *extra: str):
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[path.stem])] if path.stem in XFAIL else []
    return pytest.param(path, *extra, id="-".join([path.name, *extra]), marks=marks)


def test_every_case_has_an_expected_file_and_there_are_enough_of_them():
    assert len(SPECS) >= 60
    assert {p.suffix for p in SPECS} == {".yaml", ".json"}
    missing = [p.name for p in SPECS if not p.with_suffix(".expected").is_file()]
    assert not missing
    orphans = [p.name for p in CASES.glob("*.expected") if not any(s.stem == p.stem for s in SPECS)]
    assert not orphans
    assert len({p.stem for p in SPECS}) == len(SPECS), "two cases share a name (and so an .expected file)"
    assert set(XFAIL) <= {p.stem for p in SPECS}


def test_every_command_that_reads_a_spec_is_covered():
    commands = _leaf_commands()
    readers = {name for name, command in commands.items() if any(p.name == "spec" for p in command.params)}
    assert readers <= set(WRITERS), f"add {sorted(readers - set(WRITERS))} to WRITERS"
    assert {"validate", "expand", "compile", "profile"} <= set(COMMANDS)


@pytest.mark.parametrize(("spec", "command"), [_param(p, c.replace(" ", "-")) for p in SPECS for c in COMMANDS])
def test_bad_spec(spec: Path, command: str, tmp_path: Path):
    expected = spec.with_suffix(".expected").read_text().replace("{file}", str(spec)).splitlines()
    assert expected and all(line.startswith(f"{spec}:") for line in expected)
    assert all(line.split(": error: ")[0].count(":") == 2 for line in expected), "every line has file:line:col"
    command = command.replace("-", " ")
    args = [a.replace("OUT", str(tmp_path / "out")) for a in WRITERS[command]]
    result = CliRunner().invoke(app, [*command.split(), str(spec), *args])
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected
    assert result.exit_code == 2, result.stderr
    assert list(tmp_path.iterdir()) == []  # no output, not even a temporary file
