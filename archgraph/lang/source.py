"""Load a spec file (YAML or JSON) into plain data that remembers where each value came from.

Specs are written by people, so every failure here is a :class:`SpecError` at
``file:line:col`` rather than a parser traceback, and later stages can point at
any value through :meth:`Source.loc`. The tree holds only plain values (dict,
list, str, int, float, bool, None) and is bounded in size and depth, so nothing
downstream has to defend against hostile input such as alias bombs.
"""

from __future__ import annotations

import bisect
import copy
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from archgraph.errors import Loc, SpecError, did_you_mean, shorten

MAX_BYTES = 4 * 1024 * 1024  # largest spec file accepted
MAX_DEPTH = 64  # deepest nesting of lists/mappings
MAX_NODES = 200_000  # most values in the tree, counted after expanding aliases
MAX_NUMBER_CHARS = 1000  # longest numeric scalar; converting a long number is quadratic in its length

_TAG = "tag:yaml.org,2002:"
_STR, _SEQ, _MAP, _MERGE = _TAG + "str", _TAG + "seq", _TAG + "map", _TAG + "merge"
_NULL, _BOOL, _INT, _FLOAT = _TAG + "null", _TAG + "bool", _TAG + "int", _TAG + "float"
# YAML 1.2's core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): the texts of each type,
# tried in this order on a plain scalar (anything else is a string); an explicit tag takes only its own.
_FORMS = {
    _NULL: re.compile(r"null|Null|NULL|~|"),
    _BOOL: re.compile(r"true|True|TRUE|false|False|FALSE"),
    _INT: re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"),
    _FLOAT: re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"),
}
_SCALARS = {_STR, *_FORMS}


def core_tag(text: str) -> str:
    """The tag of a plain (unquoted, untagged) scalar under YAML 1.2's core schema.

    Not YAML 1.1's (PyYAML's own): ``yes``/``no``/``on``/``off`` are strings, ``010`` is ten,
    ``1e3`` is a float, and there are no base-60 numbers (``1:30``) or underscores (``1_000``).
    """
    for tag, form in _FORMS.items():
        if form.fullmatch(text):
            return tag
    return _STR


def construct(tag: str, text: str) -> Any:
    """The value of a scalar tagged ``tag`` (by :func:`core_tag` or explicitly) whose text is ``text``.

    Raises ValueError where ``text`` is not one of the core schema's texts for ``tag``.
    """
    if tag == _STR:
        return text
    if not _FORMS[tag].fullmatch(text):
        raise ValueError(f"{text!r} is not a {tag[len(_TAG):]}")
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return text in ("true", "True", "TRUE")
    if tag == _INT:
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return int(text if base == 10 else text[2:], base)  # base 10: a leading 0 is not octal
    special = text.lower().replace(".", "")
    return float(special if special.lstrip("+-") in ("inf", "nan") else text)


def old_bool_hint(value: Any) -> str | None:
    """For ``yes``/``no``/``on``/``off`` in any case, booleans in YAML 1.1 but strings here: what to write instead."""
    words = {"yes": "true", "on": "true", "no": "false", "off": "false"}
    word = words.get(value.lower()) if isinstance(value, str) else None
    return f"YAML 1.2 reads yes, no, on and off as strings: write {word}" if word else None


@dataclass(frozen=True)
class Source:
    """A loaded spec: its plain data plus the position of every value and mapping key."""

    file: str
    data: Any
    _pos: _Pos | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_data(cls, data: Any, file: str = "<data>") -> Source:
        """A Source for data built in code: every location is just ``file``."""
        return cls(file, data)

    def loc(self, path: Sequence[str | int] = ()) -> Loc:
        """Where the value at ``path`` is; for a missing path, its longest existing prefix."""
        pos, _ = self._walk(path)
        return Loc(self.file, pos.line, pos.col) if pos else Loc(self.file)

    def key_loc(self, path: Sequence[str | int]) -> Loc:
        """Where the key of the mapping entry at ``path`` is (falls back to :meth:`loc`)."""
        pos, found = self._walk(path)
        if found and pos is not None and pos.key:
            return Loc(self.file, *pos.key)
        return self.loc(path)

    def _walk(self, path: Sequence[str | int]) -> tuple[_Pos | None, bool]:
        pos = self._pos
        if pos is None:
            return None, False
        for step in path:
            kids = pos.kids
            if isinstance(kids, dict) and isinstance(step, str) and step in kids:
                pos = kids[step]
            elif isinstance(kids, list) and type(step) is int and 0 <= step < len(kids):
                pos = kids[step]
            else:
                return pos, False
        return pos, True


class _Pos:
    """Position of one value, of the key naming it (in a mapping), and of its children."""

    __slots__ = ("line", "col", "key", "kids")

    def __init__(self, line: int, col: int, key: tuple[int, int] | None = None):
        self.line, self.col, self.key = line, col, key
        self.kids: dict[str, _Pos] | list[_Pos] | None = None


def load(path: str | os.PathLike) -> Source:
    """Load a spec file: ``.json`` files as JSON, anything else as YAML."""
    file = os.fsdecode(path)
    try:
        if os.path.isdir(file):
            raise SpecError("spec path is a directory, not a file", Loc(file))
        with open(file, "rb") as f:
            data = f.read(MAX_BYTES + 1)  # read no more than we would accept
    except FileNotFoundError:
        folder, name = os.path.split(file)
        try:
            hint = did_you_mean(name, os.listdir(folder or "."))
        except OSError:
            hint = None
        raise SpecError("spec file not found", Loc(file), hint) from None
    except OSError as e:
        raise SpecError(f"cannot read spec file: {e.strerror or e}", Loc(file)) from None
    fmt = "json" if os.path.splitext(file)[1].lower() == ".json" else "yaml"
    return loads(data, file, fmt)


def loads(text: str | bytes, file: str = "<spec>", fmt: str = "yaml") -> Source:
    """Load a spec from ``text`` (``fmt`` is ``"yaml"`` or ``"json"``); ``file`` names it in messages."""
    if fmt not in ("yaml", "json"):
        raise ValueError(f"unknown spec format {fmt!r}")
    if len(text) > MAX_BYTES:
        raise SpecError(f"spec is too large (over {MAX_BYTES // 2**20} MiB)", Loc(file, 1, 1))
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text), file)
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark is not content
    builder = _Builder(file)
    if fmt == "json":
        data, pos = builder.from_json(text)
    else:
        data, pos = builder.from_yaml(text)
    if not isinstance(data, dict):
        where = Loc(file, pos.line, pos.col)
        raise SpecError(f"a spec must be a mapping at the top level, got {_kind(data)}", where, "write 'key: value' entries")
    return Source(file, data, pos)


def scalar(text: str, file: str = "<text>") -> Any:
    """``text`` read as a spec reads a single YAML scalar: ``48`` an int, ``'48'`` a string, ``1e3`` a float.

    Nothing at all is null. A SpecError where it is not a scalar: a list, a mapping, a tag that specs
    refuse, bad YAML.
    """
    node = _compose(text, file)
    if node is None:
        return None
    if not isinstance(node, ScalarNode):
        raise SpecError("not a single YAML scalar", Loc(file, 1, 1))
    builder = _Builder(file)
    if node.tag not in _SCALARS:
        raise builder._bad_tag(node)
    return builder._scalar(node)


def dumps(data: Any, **options: Any) -> str:
    """``data`` as YAML text that :func:`loads` reads back as ``data`` (``options``: ``yaml.dump``'s).

    PyYAML writes by YAML 1.1, so a string such as ``1e3`` or ``0o7`` would come out unquoted and be
    read back as a number; here every string that YAML 1.1 or 1.2 would read as anything else is quoted.
    """
    return yaml.dump(data, Dumper=_Dumper, **options)


class _Dumper(yaml.SafeDumper):
    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0] and tag != core_tag(value):
            return "?"  # YAML 1.1 and 1.2 differ: no tag that a plain scalar would get, so the string is quoted
        return tag


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        col = len(data[line_start : e.start].decode("utf-8")) + 1  # valid up to the bad byte
        loc = Loc(file, data.count(b"\n", 0, e.start) + 1, col)
        raise SpecError(f"spec is not UTF-8 text (bad byte 0x{data[e.start]:02x})", loc, "save it as UTF-8") from None


class _Resolver(BaseResolver):
    """Plain scalars typed by YAML 1.2's core schema (:func:`core_tag`); '<<' kept apart to be refused."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _MERGE if value == "<<" else core_tag(value)
        return super().resolve(kind, value, implicit)  # quoted: a string; collections: seq or map


class _Loader(Reader, Scanner, Parser, Composer, _Resolver):
    """PyYAML's safe composer, with a depth limit and aliases that keep their own position."""

    def __init__(self, text: str, file: str):
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)
        self.file, self.depth = file, 0

    def get_single_node(self) -> Node | None:
        self.get_event()  # stream start
        node = None if self.check_event(StreamEndEvent) else self.compose_document()
        if not self.check_event(StreamEndEvent):
            where = _loc(self.file, self.peek_event().start_mark)
            raise SpecError("a spec file must hold a single YAML document, found another", where, "remove the '---'")
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            # A shallow copy shares the anchored contents but points at the alias itself.
            node = copy.copy(super().compose_node(parent, index))
            node.start_mark, node.end_mark = event.start_mark, event.end_mark
            node.alias = True  # type: ignore[attr-defined]  # for _Builder: where an expansion started
            return node
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        # Checked here too, not only in _Builder, because the composer recurses per level.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _too_deep(_loc(self.file, event.start_mark))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str, file: str) -> Node | None:
    """Compose ``text`` into YAML nodes, turning every parser failure into a SpecError."""
    try:
        loader = _Loader(text, file)  # the reader rejects bad characters right away
    except ReaderError as e:
        index = e.position
        line_start = text.rfind("\n", 0, index) + 1
        loc = Loc(file, text.count("\n", 0, index) + 1, index - line_start + 1)
        raise SpecError(f"character U+{e.character:04X} is not allowed in YAML", loc) from None
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        raise _syntax_error(e, file) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", Loc(file, 1, 1)) from None
    except RecursionError:
        raise _too_deep(Loc(file, 1, 1)) from None
    finally:
        loader.dispose()


def _syntax_error(e: yaml.MarkedYAMLError, file: str) -> SpecError:
    mark = e.problem_mark or e.context_mark
    problem = " ".join((e.problem or e.context or "syntax error").split())
    hint = None
    if "'\\t'" in problem:
        hint = "YAML does not allow tabs for indentation; use spaces"
    elif e.context and e.context_mark and e.problem_mark:
        hint = f"{e.context} that starts at line {e.context_mark.line + 1}"
    elif "mapping values are not allowed" in problem:
        hint = "is there an unquoted ':' in a value? quote the value"
    return SpecError(f"invalid YAML: {problem}", _loc(file, mark) if mark else Loc(file, 1, 1), hint)


class _Pairs(list):
    """A JSON object as json decoded it: its (key, value) pairs, duplicates included."""


class _Builder:
    """Builds the plain tree and its positions, counting values so the bounds hold."""

    def __init__(self, file: str):
        self.file, self.count = file, 0
        self.alias: Node | None = None  # the outermost alias being expanded, if any

    def from_yaml(self, text: str) -> tuple[Any, _Pos]:
        node = _compose(text, self.file)
        if node is None or (node.tag == _TAG + "null" and node.value == ""):
            raise SpecError("spec is empty", Loc(self.file, 1, 1))
        return self.yaml_value(node, 1)

    def from_json(self, text: str) -> tuple[Any, _Pos]:
        if not text.strip():
            raise SpecError("spec is empty", Loc(self.file, 1, 1))
        try:
            raw = json.loads(text, object_pairs_hook=_Pairs)
        except json.JSONDecodeError as e:
            before = text[: e.pos].rstrip()
            hint = "JSON allows no comma after the last item" if before.endswith(",") and e.msg in (
                "Expecting value", "Expecting property name enclosed in double quotes") else None
            raise SpecError(f"invalid JSON: {e.msg}", Loc(self.file, e.lineno, e.colno), hint) from None
        except RecursionError:
            raise _too_deep(Loc(self.file, 1, 1)) from None
        except ValueError as e:  # e.g. an integer with too many digits
            raise SpecError(f"invalid JSON: {e}", Loc(self.file, 1, 1)) from None
        return self.json_value(raw, _json_nodes(text), 1)

    def yaml_value(self, node: Node, depth: int) -> tuple[Any, _Pos]:
        if getattr(node, "alias", False) and self.alias is None:
            self.alias = node
            try:
                return self.yaml_value(node, depth)
            finally:
                self.alias = None
        pos = self._enter(node, depth, not isinstance(node, ScalarNode))
        if isinstance(node, ScalarNode) and node.tag in _SCALARS:
            return self._scalar(node), pos
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            items, pos.kids = [], []
            for child in node.value:
                value, child_pos = self.yaml_value(child, depth + 1)
                items.append(value)
                pos.kids.append(child_pos)
            return items, pos
        if isinstance(node, MappingNode) and node.tag == _MAP:
            out: dict[str, Any] = {}
            pos.kids = {}
            for key_node, value_node in node.value:
                key = self._yaml_key(key_node)
                self._check_unique(pos, key, key_node)
                out[key], pos.kids[key] = self.yaml_value(value_node, depth + 1)
                pos.kids[key].key = _mark(key_node)
            return out, pos
        raise self._bad_tag(node)

    def json_value(self, raw: Any, node: Node | None, depth: int) -> tuple[Any, _Pos]:
        pos = self._enter(node, depth, isinstance(raw, list))
        # Walk the YAML nodes alongside json's values only while their shapes agree.
        shape = MappingNode if isinstance(raw, _Pairs) else SequenceNode
        kids = node.value if isinstance(node, shape) and len(node.value) == len(raw) else None
        if isinstance(raw, _Pairs):
            out: dict[str, Any] = {}
            pos.kids = {}
            for i, (key, value) in enumerate(raw):
                key_node, value_node = kids[i] if kids else (None, None)
                self._check_unique(pos, key, key_node)
                out[key], pos.kids[key] = self.json_value(value, value_node, depth + 1)
                pos.kids[key].key = _mark(key_node) if key_node else None
            return out, pos
        if isinstance(raw, list):
            items, pos.kids = [], []
            for i, value in enumerate(raw):
                item, item_pos = self.json_value(value, kids[i] if kids else None, depth + 1)
                items.append(item)
                pos.kids.append(item_pos)
            return items, pos
        return raw, pos

    def _enter(self, node: Node | None, depth: int, collection: bool) -> _Pos:
        """Count one more value and return its position, enforcing the size bounds."""
        pos = _Pos(*_mark(node)) if node is not None else _Pos(0, 0)
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError(f"spec is too large: more than {MAX_NODES:,} values after expanding aliases",
                            self._loc(self.alias or node), "is an alias (*name) used many times over?")
        if collection and depth > MAX_DEPTH:
            raise _too_deep(self._loc(node))
        return pos

    def _yaml_key(self, node: Node) -> str:
        if node.tag == _MERGE:
            raise SpecError("merge keys ('<<') are not supported", self._loc(node), "write the keys out in full")
        if isinstance(node, ScalarNode) and node.tag not in _SCALARS:
            raise self._bad_tag(node)
        key = self._scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(key, str):
            what = _kind(key) if isinstance(node, ScalarNode) else "a list or mapping"
            hint = f"quote it: '{node.value}'" if isinstance(node, ScalarNode) else None
            raise SpecError(f"mapping keys must be strings, got {what}", self._loc(node), hint)
        return key

    def _bad_tag(self, node: Node) -> SpecError:
        tag = "!!" + node.tag[len(_TAG) :] if node.tag.startswith(_TAG) else node.tag
        hint = "specs hold only strings, numbers, booleans, null, lists and mappings; remove the tag"
        return SpecError(f"unsupported YAML tag '{tag}' here", self._loc(node), hint)

    def _check_unique(self, pos: _Pos, key: str, key_node: Node | None) -> None:
        assert isinstance(pos.kids, dict)
        if key in pos.kids:
            first = pos.kids[key].key
            hint = f"'{shorten(key)}' is first defined at line {first[0]}" if first else "keys must be unique"
            raise SpecError(f"duplicate key '{shorten(key)}'", self._loc(key_node), hint)

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag == _STR:
            return node.value
        if len(node.value) > MAX_NUMBER_CHARS:
            raise SpecError(f"value is too long for a {node.tag[len(_TAG):]}", self._loc(node))
        try:
            return construct(node.tag, node.value)
        except ValueError:  # only reachable through explicit tags: core_tag chose the tag by the text
            raise SpecError(f"'{node.value}' is not a valid {node.tag[len(_TAG):]}", self._loc(node)) from None

    def _loc(self, node: Node | None) -> Loc:
        return Loc(self.file, *_mark(node)) if node is not None else Loc(self.file)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_TOKEN = re.compile(r"-?Infinity|NaN|true|false|null|-?[0-9][0-9.eE+-]*")
_JSON_SPACE = re.compile(r"[ \t\r\n]*")


def _json_nodes(text: str) -> Node:
    """The position of every value and key of JSON ``text`` (which json.loads accepted), as YAML nodes.

    Only positions are kept (json.loads has the values): ``json_value`` walks these beside them.
    Not YAML's own parser, which refuses some valid JSON (a DEL character, keys over 1024
    characters) and would leave such a file without any position. Collections deeper than the
    nesting bound are skipped (``json_value`` stops there).
    """
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def mark(at: int) -> yaml.Mark:
        line = bisect.bisect_right(starts, at) - 1
        return yaml.Mark("", at, line, at - starts[line], None, None)

    def space(at: int) -> int:
        return _JSON_SPACE.match(text, at).end()  # type: ignore[union-attr]

    def skip(at: int) -> int:  # past the collection opening at ``at``, without nodes
        level = 0
        while True:
            c = text[at]
            if c == '"':
                at = _JSON_STRING.match(text, at).end()  # type: ignore[union-attr]
                continue
            level += (c in "[{") - (c in "]}")
            at += 1
            if not level:
                return at

    def value(at: int, depth: int) -> tuple[Node, int]:
        at = space(at)
        start, c = mark(at), text[at]
        if c in "[{" and depth > MAX_DEPTH + 1:
            return ScalarNode(_STR, "", start, start), skip(at)
        if c == "{":
            pairs: list[tuple[Node, Node]] = []
            at = space(at + 1)
            while text[at] != "}":
                key_at = space(at)
                at = space(_JSON_STRING.match(text, key_at).end())  # type: ignore[union-attr]  # then ':'
                item, at = value(at + 1, depth + 1)
                pairs.append((ScalarNode(_STR, "", mark(key_at), mark(key_at)), item))
                at = space(at)
                at = space(at + 1) if text[at] == "," else at
            return MappingNode(_MAP, pairs, start, start), at + 1
        if c == "[":
            items: list[Node] = []
            at = space(at + 1)
            while text[at] != "]":
                item, at = value(at, depth + 1)
                items.append(item)
                at = space(at)
                at = space(at + 1) if text[at] == "," else at
            return SequenceNode(_SEQ, items, start, start), at + 1
        end = (_JSON_STRING if c == '"' else _JSON_TOKEN).match(text, at).end()  # type: ignore[union-attr]
        return ScalarNode(_STR, "", start, start), end

    return value(0, 1)[0]


def _mark(node: Node) -> tuple[int, int]:
    """1-based (line, col) of a node; PyYAML's marks are 0-based."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _loc(file: str, mark: yaml.Mark) -> Loc:
    return Loc(file, mark.line + 1, mark.column + 1)


def _too_deep(loc: Loc) -> SpecError:
    return SpecError(f"spec is nested too deeply (more than {MAX_DEPTH} levels)", loc)


def _kind(value: Any) -> str:
    """How a value's type reads in a message, e.g. 'a list'."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), "a mapping")
