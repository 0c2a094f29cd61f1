"""Safe evaluation of the parameter arithmetic written in specs, e.g. ``2*width + 1``.

Expressions are parsed by Python's own parser but evaluated by walking a small
whitelist of AST nodes: there is no eval/exec, no attribute access and no calls
beyond a few pure builtins. Anything whose size could explode (powers,
repetition, big literals) is checked *before* it is computed, so a hostile spec
can neither run code nor exhaust time or memory.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from typing import Any, Callable, Mapping

from archgraph.errors import Loc, SpecError, did_you_mean
from archgraph.lang.source import old_bool_hint

MAX_TEXT = 1000  # longest expression accepted
MAX_DEPTH = 50  # deepest AST accepted; evaluation recurses once per level
MAX_EXPONENT = 64  # largest |exponent| for '**'
MAX_INT = 2**63  # largest |int| an operation may produce
MAX_STR = 1000  # longest string an operation may produce
MAX_ITEMS = 10_000  # most items (counted through nested lists) a list operation may produce

_NUMBER_OPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}
_UNARY_OPS = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
_COMPARE_OPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", lambda a, b: a in b),
    ast.NotIn: ("not in", lambda a, b: a not in b),
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "int": int, "round": round, "len": len,
}
_OTHER_OPS = {
    ast.MatMult: "@", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.LShift: "<<",
    ast.RShift: ">>", ast.Invert: "~", ast.Is: "is", ast.IsNot: "is not",
}
_CONSTRUCTS = {
    ast.Attribute: "attribute access", ast.Lambda: "lambda expressions", ast.Dict: "dict literals",
    ast.Set: "set literals", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignment expressions (:=)", ast.Slice: "slices", ast.Starred: "starred arguments",
}


def evaluate(text: str, names: Mapping[str, Any], loc: Loc | None = None) -> Any:
    """The value of expression ``text`` with parameters looked up in ``names``.

    Every problem is a :class:`SpecError` at ``loc`` quoting the expression.
    List and tuple literals evaluate to lists.
    """
    return _Evaluator(text, names, loc).eval(_parse(text, loc))


def names_used(text: str) -> set[str]:
    """The parameter names ``text`` refers to (not the functions it calls)."""
    tree = _parse(text, None)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


_PARSED: dict[str, ast.expr] = {}  # expressions already parsed and checked (trees are only read)
_PARSED_MAX = 4096


def _parse(text: str, loc: Loc | None) -> ast.expr:
    """Parse ``text`` and check that it uses only whitelisted constructs (once per distinct text)."""
    tree = _PARSED.get(text) if isinstance(text, str) else None
    if tree is None:
        tree = _parse_new(text, loc)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = tree
    return tree


def _parse_new(text: str, loc: Loc | None) -> ast.expr:
    if not isinstance(text, str):
        raise SpecError(f"an expression must be a string, got {_type(text)}", loc)
    if len(text) > MAX_TEXT:
        raise SpecError(f"expression is too long ({len(text)} characters, at most {MAX_TEXT})", loc)
    if not text.strip():
        raise SpecError("empty expression", loc)
    try:
        with warnings.catch_warnings():  # e.g. '1if x else 2' warns; the user sees only SpecErrors
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval").body  # strip: a leading space is an indent error
    except SyntaxError as e:
        raise SpecError(f"invalid expression {_quote(text)}: {e.msg}", loc) from None
    except (ValueError, RecursionError, MemoryError):  # null bytes; absurd nesting
        raise SpecError(f"invalid expression {_quote(text)}", loc) from None
    _check(tree, text, loc)
    return tree


def _check(tree: ast.expr, text: str, loc: Loc | None) -> None:
    """Reject anything outside the whitelist, iteratively so deep input cannot overflow the stack."""

    def fail(what: str) -> SpecError:
        return SpecError(f"{what} in {_quote(text)}", loc)

    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise fail(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        kids: list[ast.expr] = []
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, type(None))):
                raise fail(f"{type(node.value).__name__} constants are not allowed")
        elif isinstance(node, ast.Name):
            pass
        elif isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
            ops = [node.op] if not isinstance(node, ast.Compare) else node.ops
            for op in ops:
                if type(op) not in _NUMBER_OPS and type(op) not in _UNARY_OPS and type(op) not in _COMPARE_OPS:
                    raise fail(f"operator '{_OTHER_OPS.get(type(op), type(op).__name__)}' is not allowed")
            kids = list(ast.iter_child_nodes(node))
        elif isinstance(node, (ast.BoolOp, ast.IfExp, ast.List, ast.Tuple, ast.Subscript)):
            kids = list(ast.iter_child_nodes(node))
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
                raise fail("function calls other than min/max/abs/int/round/len are not allowed")
            if node.keywords:
                raise fail("keyword arguments are not allowed")
            kids = list(node.args)
        else:
            what = _CONSTRUCTS.get(type(node), f"'{type(node).__name__}' expressions")
            raise fail(f"{what} {'is' if what.endswith('access') else 'are'} not allowed")
        stack.extend((kid, depth + 1) for kid in kids if isinstance(kid, ast.expr))


class _Evaluator:
    """Evaluates a checked AST; one method per whitelisted node type."""

    def __init__(self, text: str, names: Mapping[str, Any], loc: Loc | None):
        self.text, self.names, self.loc = text, names, loc

    def error(self, message: str, hint: str | None = None) -> SpecError:
        return SpecError(f"{message} in {_quote(self.text)}", self.loc, hint)

    def eval(self, node: ast.expr) -> Any:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Constant(self, node: ast.Constant) -> Any:
        return self.bounded(node.value)

    def _Name(self, node: ast.Name) -> Any:
        if node.id not in self.names:
            word = {"true": "true", "false": "false", "null": "null"}.get(node.id.lower())
            hint = (f"a quoted '{node.id}' is an expression: write {word} without quotes" if word
                    else old_bool_hint(node.id) or did_you_mean(node.id, self.names))
            raise self.error(f"unknown parameter '{node.id}'", hint)
        return self.names[node.id]

    def _BinOp(self, node: ast.BinOp) -> Any:
        a, b = self.eval(node.left), self.eval(node.right)
        return self.bounded(self.arith(_NUMBER_OPS[type(node.op)][0], a, b))

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not _is_number(value):
            raise self.error(f"cannot apply '{_UNARY_OPS[type(node.op)]}' to {_type(value)}")
        return self.bounded(-value if isinstance(node.op, ast.USub) else +value)

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, right_node in zip(node.ops, node.comparators):  # chained, and lazy like Python
            right = self.eval(right_node)
            symbol, compare = _COMPARE_OPS[type(op)]
            if symbol.endswith("in") and not isinstance(right, (list, tuple, str)):
                raise self.error(f"'{symbol}' needs a list or string on its right, got {_type(right)}")
            try:
                if not compare(left, right):
                    return False
            except TypeError:
                raise self.error(f"cannot apply '{symbol}' to {_type(left)} and {_type(right)}") from None
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        want = isinstance(node.op, ast.Or)  # 'or' stops at the first true value, 'and' at a false one
        for value_node in node.values:
            value = self.eval(value_node)
            if bool(value) == want:
                return value
        return value

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def _List(self, node: ast.List | ast.Tuple) -> list[Any]:
        return self.bounded([self.eval(item) for item in node.elts])

    _Tuple = _List

    def _Subscript(self, node: ast.Subscript) -> Any:
        seq, index = self.eval(node.value), self.eval(node.slice)
        if not isinstance(seq, (list, tuple)):
            raise self.error(f"only lists can be indexed, not {_type(seq)}")
        if type(index) is not int:
            raise self.error(f"a list index must be an integer, not {_type(index)}")
        if not -len(seq) <= index < len(seq):
            raise self.error(f"index {index} is out of range for a list of {len(seq)}")
        return seq[index]

    def _Call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]  # _check made sure
        args = [self.eval(arg) for arg in node.args]
        if name == "round" and len(args) == 2 and _is_number(args[1]) and abs(args[1]) > MAX_EXPONENT:
            raise self.error(f"round() digits must be within ±{MAX_EXPONENT}")  # 10**digits is computed
        try:
            return self.bounded(_FUNCTIONS[name](*args))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as e:
            raise self.error(f"{name}(): {e}") from None

    def arith(self, symbol: str, a: Any, b: Any) -> Any:
        """``a symbol b`` for numbers, plus '+' and '*' on strings and lists, size-checked first."""
        if _is_number(a) and _is_number(b):
            if symbol == "**":
                self.check_power(a, b)
            try:
                value = _NUMBER_OPS_BY_SYMBOL[symbol](a, b)
            except ZeroDivisionError:
                raise self.error("division by zero") from None
            except OverflowError:
                raise self.error("number too large") from None
            if isinstance(value, float) and math.isinf(value) and math.isfinite(a) and math.isfinite(b):
                raise self.error("number too large")
            return value
        if symbol == "+" and isinstance(a, str) and isinstance(b, str):
            self.check_size(len(a) + len(b), str)
            return a + b
        if symbol == "+" and isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            self.check_size(_items(a) + _items(b), list)
            return [*a, *b]
        if symbol == "*":
            seq, count = (b, a) if type(a) in (int, bool) else (a, b)
            if type(count) in (int, bool) and isinstance(seq, (str, list, tuple)):
                count = max(int(count), 0)
                self.check_size(len(seq) * count if isinstance(seq, str) else _items(seq) * count, type(seq))
                return seq * count if isinstance(seq, str) else list(seq) * count
        raise self.error(f"cannot apply '{symbol}' to {_type(a)} and {_type(b)}")

    def check_power(self, base: Any, exponent: Any) -> None:
        if abs(exponent) > MAX_EXPONENT:
            raise self.error(f"exponent {exponent} is too large (at most {MAX_EXPONENT})")
        if isinstance(base, int) and base.bit_length() * abs(exponent) > 64 * MAX_EXPONENT:
            raise self.error("number too large")  # a huge base from `names` would be slow to raise

    def check_size(self, size: int, kind: type) -> None:
        limit, unit = (MAX_STR, "characters") if kind is str else (MAX_ITEMS, "items")
        if size > limit:
            raise self.error(f"result is too long (over {limit} {unit})")

    def bounded(self, value: Any) -> Any:
        """``value``, if it is within the bounds on results."""
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise self.error("integer is too large (over 2**63)")
        if isinstance(value, complex):
            raise self.error("result is not a real number")
        if isinstance(value, (str, list)):
            self.check_size(len(value) if isinstance(value, str) else _items(value), type(value))
        return value


_NUMBER_OPS_BY_SYMBOL = {symbol: fn for symbol, fn in _NUMBER_OPS.values()}


def _items(value: Any, budget: int = MAX_ITEMS + 1) -> int:
    """Items in a list counting through nested lists (shared ones each time), stopping past ``budget``."""
    total = 0
    for item in value:
        total += 1 + (_items(item, budget - total) if isinstance(item, (list, tuple)) else 0)
        if total >= budget:
            break
    return total


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


def _type(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= 80 else text[:77] + "...")
