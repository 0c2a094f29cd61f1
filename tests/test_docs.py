"""The documentation's examples, run: README.md and docs/spec.md say only what the tool does.

Conventions for fenced blocks in those files (the info string is the text after the opening fence):

* ```` ```yaml spec [file=NAME] [error] ```` -- a complete spec. It is written to NAME (default
  ``example-<line>.yaml``) in a scratch directory and must pass ``archgraph.load`` and shape
  inference at its input size, as ``archgraph validate`` does. With ``error`` it must fail with a
  ``SpecError`` instead; the ``console`` block that follows shows the exact message.
* ```` ```yaml excerpt=PATH ```` -- lines quoted from the repository file PATH: they must appear
  there verbatim and in one piece.
* ```` ```console ```` -- a terminal session. A line starting with ``$ `` is a command; the lines
  up to the next command are its expected output (stdout and stderr together, trailing spaces
  ignored). A line ``...`` stands for any number of lines, so a trailing ``...`` makes the rest a
  prefix. A command must exit with 0 unless the next command is ``$ echo $?``, whose output is
  the status expected. Commands run in the scratch directory, which holds the document's
  ``yaml spec`` files and a copy of ``specs/``. ``archgraph ...`` (optionally ``> FILE``) runs
  in-process through typer's ``CliRunner``; anything else, pipes included, runs in bash, where
  ``archgraph`` stands for ``python -m archgraph.cli``.
* ```` ```pycon ```` -- a Python session, run by doctest (ELLIPSIS on) in the scratch directory.

Other blocks (``yaml``, ``sh``, ...) are illustrations and are not run; a ``$ archgraph`` line
outside a ``console`` block is an error, so that no documented command escapes this file.
The reference tables of docs/spec.md (one per edge op, block and pattern, one row per command) are
checked against the registries and the CLI, and relative links against the files and headings they
point to.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archgraph
from archgraph.cli import app
from archgraph.ir import infer
from archgraph.ops import blocks, edge_ops
from archgraph.patterns import patterns

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/spec.md")
KNOWN = {"yaml": ({"spec", "error"}, {"file", "excerpt"}), "console": (set(), set()), "pycon": (set(), set())}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    flags: frozenset = frozenset()
    options: tuple = ()
    lines: tuple = ()
    info: str = ""

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def parse_blocks(doc: str) -> list[Block]:
    """The fenced blocks of ``doc`` (top-level backtick fences)."""
    found, lines, i = [], (ROOT / doc).read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(`{3,})(.*)$", lines[i])
        if not opening:
            i += 1
            continue
        fence, info, start, body = opening.group(1), opening.group(2).strip(), i + 1, []
        i += 1
        while i < len(lines) and not re.fullmatch(re.escape(fence) + "`*", lines[i].strip()):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{doc}:{start}: unclosed code fence")
        i += 1
        words = info.split()
        options = tuple(tuple(w.split("=", 1)) for w in words[1:] if "=" in w)
        flags = frozenset(w for w in words[1:] if "=" not in w)
        found.append(Block(doc, start, words[0] if words else "", flags, options, tuple(body), info))
    return found


BLOCKS = {doc: parse_blocks(doc) for doc in DOCS}
ALL = [block for doc in DOCS for block in BLOCKS[doc]]
SPECS = [b for b in ALL if b.lang == "yaml" and "spec" in b.flags]
EXCERPTS = [b for b in ALL if b.lang == "yaml" and b.option("excerpt")]
CONSOLES = [b for b in ALL if b.lang == "console"]
PYCONS = [b for b in ALL if b.lang == "pycon"]


def ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


def spec_file(block: Block) -> str:
    return block.option("file", f"example-{block.line}.yaml")  # type: ignore[return-value]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A scratch directory per document: its ``yaml spec`` files and a copy of ``specs/``."""
    made: dict[str, Path] = {}

    def get(doc: str) -> Path:
        if doc not in made:
            folder = tmp_path_factory.mktemp(Path(doc).stem)
            shutil.copytree(ROOT / "specs", folder / "specs")
            for block in BLOCKS[doc]:
                if block in SPECS:
                    (folder / spec_file(block)).write_text(block.text, encoding="utf-8")
            made[doc] = folder
        return made[doc]

    return get


# --- the conventions themselves -------------------------------------------------------------------


def test_every_block_follows_the_conventions():
    problems = []
    for block in ALL:
        if block.lang in KNOWN:
            flags, options = KNOWN[block.lang]
            unknown = (block.flags - flags) | {k for k, _ in block.options if k not in options}
            if unknown:
                problems.append(f"{block.id}: unknown word(s) {sorted(unknown)} in '{block.info}'")
            if block.lang == "yaml" and "error" in block.flags and "spec" not in block.flags:
                problems.append(f"{block.id}: 'error' only goes with 'spec'")
        if block.lang != "console" and any(line.lstrip().startswith("$ archgraph") for line in block.lines):
            problems.append(f"{block.id}: a '$ archgraph' command outside a console block is never run")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_spec_file_names_are_unique(doc):
    names = [spec_file(b) for b in BLOCKS[doc] if b in SPECS]
    assert len(names) == len(set(names)), names


def test_the_docs_have_runnable_examples():
    assert {b.doc for b in CONSOLES} == set(DOCS)
    assert any("error" in b.flags for b in SPECS) and any("error" not in b.flags for b in SPECS)
    assert PYCONS and EXCERPTS


# --- yaml spec and excerpt blocks -----------------------------------------------------------------


@pytest.mark.parametrize("block", SPECS, ids=ids(SPECS))
def test_spec_examples_validate(block, workspace):
    path = workspace(block.doc) / spec_file(block)
    if "error" in block.flags:
        with pytest.raises(archgraph.SpecError):
            infer(archgraph.load(path))
    else:
        infer(archgraph.load(path))


@pytest.mark.parametrize("block", EXCERPTS, ids=ids(EXCERPTS))
def test_excerpts_are_verbatim(block):
    source = (ROOT / block.option("excerpt")).read_text(encoding="utf-8")
    assert "\n" + block.text in "\n" + source, f"{block.id} is not a verbatim excerpt of {block.option('excerpt')}"


# --- console blocks -------------------------------------------------------------------------------


@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    for offset, line in enumerate(block.lines, start=1):
        if line.startswith("$ "):
            found.append(Command(line[2:].strip(), block.line + offset))
        elif found:
            found[-1].expected.append(line.rstrip())
        elif line.strip():
            raise AssertionError(f"{block.doc}:{block.line + offset}: output before any command")
    for command in found:
        while command.expected and not command.expected[-1]:
            command.expected.pop()
    return found


def matches(expected: list[str], output: str) -> bool:
    """``output`` line by line against ``expected``, where a line '...' matches any number of lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n" for line in expected)
    actual = "".join(line.rstrip() + "\n" for line in output.rstrip("\n").splitlines()) if output.strip() else ""
    return re.fullmatch(pattern, actual) is not None


_PLAIN = re.compile(r"^archgraph(?:\s+[^|<>;&$`]*?)?(?:\s+>\s*(?P<file>[\w./-]+))?$")


def run(command: str, cwd: Path) -> tuple[int, str]:
    """(exit status, output) of one documented command, run in ``cwd``."""
    plain = _PLAIN.match(command)
    if plain:
        args = shlex.split(command[: plain.start("file")].rstrip(" >") if plain.group("file") else command,
                           comments=True)[1:]
        result = CliRunner().invoke(app, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if plain.group("file"):
            (cwd / plain.group("file")).write_text(result.stdout, encoding="utf-8")
            return result.exit_code, result.stderr
        return result.exit_code, result.output
    script = f'set -o pipefail\narchgraph() {{ "{sys.executable}" -m archgraph.cli "$@"; }}\n{command}\n'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("block", CONSOLES, ids=ids(CONSOLES))
def test_console_examples(block, workspace, monkeypatch):
    cwd = workspace(block.doc)
    monkeypatch.chdir(cwd)
    session = commands(block)
    status = None
    for k, command in enumerate(session):
        where = f"{block.doc}:{command.line}: $ {command.text}"
        if command.text == "echo $?":
            status, output = 0, f"{status}\n"
        else:
            status, output = run(command.text, cwd)
        assert matches(command.expected, output), (
            f"{where}\n--- expected\n" + "\n".join(command.expected) + f"\n--- got (exit {status})\n{output}"
        )
        follows = session[k + 1] if k + 1 < len(session) else None
        wanted = int(follows.expected[0]) if follows and follows.text == "echo $?" else 0
        if command.text != "echo $?":
            assert status == wanted, f"{where}\nexit status {status}, expected {wanted}\n{output}"


def test_the_output_matcher():
    assert matches(["a", "...", "c"], "a\nb\nb2\nc\n")
    assert matches(["a", "..."], "a\nb\n") and matches(["a", "..."], "a\n")
    assert matches(["...", "c"], "c\n") and matches([], "")
    assert not matches(["a"], "a\nb\n") and not matches(["a", "c"], "a\nb\nc\n")
    assert matches(["x  y"], "x  y   \n")


# --- pycon blocks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("block", PYCONS, ids=ids(PYCONS))
def test_python_examples(block, workspace, monkeypatch):
    monkeypatch.chdir(workspace(block.doc))
    test = doctest.DocTestParser().get_doctest(block.text, {}, block.id, block.doc, block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


# --- the reference tables of docs/spec.md ---------------------------------------------------------


def shown(value) -> str:
    """A parameter default as the reference tables write it."""
    if value == "required":
        return "required"

    def yaml(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(yaml(x) for x in v) + "]"
        return str(v)

    return f"`{yaml(value)}`"


def reference_sections() -> dict[tuple[str, str], list[str]]:
    """``(kind, name) -> lines`` for every heading like '### `op: upsample`' in docs/spec.md."""
    sections: dict[tuple[str, str], list[str]] = {}
    current = None
    for line in (ROOT / "docs/spec.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = re.fullmatch(r"#+ `(op|block|use): (\w+)`.*", line)
            current = (heading.group(1), heading.group(2)) if heading else None
            if current:
                assert current not in sections, f"two sections for {current}"
                sections[current] = []
        elif current:
            sections[current].append(line)
    return sections


def table(lines: list[str]) -> dict[str, str]:
    """The first table in ``lines``, as first column -> second column (header row skipped)."""
    rows, started = [], False
    for line in lines:
        if line.startswith("|"):
            started = True
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif started:
            break
    body = [row for row in rows[1:] if not set("".join(row)) <= set("-: ")]
    return {row[0].strip("`"): row[1] for row in body}


@pytest.mark.parametrize(("kind", "registry"), [("op", edge_ops), ("block", blocks), ("use", patterns)])
def test_reference_tables_match_the_registries(kind, registry):
    sections = reference_sections()
    documented = {name for k, name in sections if k == kind}
    assert documented == set(registry()), "docs/spec.md must have one section per registered name"
    for name, cls in registry().items():
        expected = {key: shown(default) for key, default in cls.parameters().items()}
        assert table(sections[kind, name]) == expected, f"the parameter table of `{kind}: {name}`"


def test_every_command_is_in_the_command_table():
    import typer.main

    lines = (ROOT / "docs/spec.md").read_text(encoding="utf-8").splitlines()
    for name in typer.main.get_command(app).commands:
        rows = [line for line in lines if line.startswith(f"| `archgraph {name}")]
        assert len(rows) == 1, f"docs/spec.md needs one row for `archgraph {name}` in its command table"


# --- links ----------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, flags=re.M)}


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    path = ROOT / doc
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{doc}: link to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{doc}: link to missing heading {target}"
