"""Discovers translators through the ``rosetta.translators`` entry-point group, so a
third-party package adds a dialect by declaring an entry point; nothing here changes."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from translators.contract import Translator

ENTRY_POINT_GROUP = "rosetta.translators"


class UnknownDialectError(LookupError):
    """A config or command named a dialect no installed package provides."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown dialect {name!r}; installed dialects: {', '.join(known) or 'none'}"
        )
        self.name = name


@cache
def available() -> dict[str, type[Translator]]:
    """Every installed translator class by dialect name, loaded once per process."""
    found: dict[str, type[Translator]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Translator)):
            raise TypeError(f"entry point {entry.name!r} ({entry.value}) is not a Translator")
        found[entry.name] = cls
    return dict(sorted(found.items()))


def translator_class(name: str) -> type[Translator]:
    classes = available()
    try:
        return classes[name]
    except KeyError:
        raise UnknownDialectError(name, list(classes)) from None
