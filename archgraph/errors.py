"""The one error type a user ever sees.

Every problem found in a spec becomes a :class:`SpecError` that knows where it
is (``file:line:col``), what is wrong, and, where we can guess, how to fix it.
Checks that can find several problems raise :class:`SpecErrors` so that one run
reports all of them, not only the first.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True, order=True)
class Loc:
    """A position in a spec file; ``line`` and ``col`` are 1-based (0 = unknown)."""

    file: str = "<spec>"
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(Exception):
    """A problem in a spec, located in its source."""

    def __init__(self, message: str, loc: Loc | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc or Loc()
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.loc}: error: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return printable(text)


class SpecErrors(SpecError):
    """Several problems found in one pass; ``str()`` gives one line each, in file order."""

    def __init__(self, errors: Sequence[SpecError]):
        self.errors = sorted(errors, key=lambda e: (e.loc.file, e.loc.line, e.loc.col))
        first = self.errors[0]
        super().__init__(first.message, first.loc, first.hint)

    def __str__(self) -> str:
        return "\n".join(SpecError.__str__(e) for e in self.errors)

    def __iter__(self):
        return iter(self.errors)


def printable(text: str) -> str:
    """``text`` on one line: line breaks, tabs and other unprintable characters (which a spec's keys and
    values may hold) written as escapes, so that every problem stays one line of output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def shorten(text: object, limit: int = 60) -> str:
    """``text`` for quoting in a message: cut to ``limit`` characters with '...' if it is longer."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def raise_all(errors: Sequence[SpecError]) -> None:
    """Raise ``errors`` together if there are any (a lone error is raised as itself)."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest of ``choices`` to a misspelt ``word``, if any is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
