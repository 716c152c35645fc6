"""Maps a request path to the translator that serves it. Exact paths are a dict lookup;
templated paths (``{id}``, ``{rest:path}``) are tried in registration order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    target: T
    route_name: str
    params: dict[str, str]
    method_allowed: bool


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    target: T
    route_name: str
    methods: frozenset[str]
    pattern: re.Pattern[str] | None


def compile_template(template: str) -> re.Pattern[str] | None:
    """``None`` for a template without parameters (matched exactly)."""
    if "{" not in template:
        return None
    regex, last = "", 0
    for found in _PARAM.finditer(template):
        regex += re.escape(template[last : found.start()])
        regex += f"(?P<{found.group(1)}>.*)" if found.group(2) else f"(?P<{found.group(1)}>[^/]+)"
        last = found.end()
    regex += re.escape(template[last:])
    return re.compile(f"^{regex}\\Z", re.S)


class Router(Generic[T]):
    def __init__(self) -> None:
        self._exact: dict[str, list[_Entry[T]]] = {}
        self._templated: list[_Entry[T]] = []
        self.templates: list[tuple[str, T]] = []

    def add(self, template: str, methods: tuple[str, ...], target: T, route_name: str) -> None:
        pattern = compile_template(template)
        entry = _Entry(target, route_name, frozenset(m.upper() for m in methods), pattern)
        if pattern is None:
            self._exact.setdefault(template, []).append(entry)
        else:
            self._templated.append(entry)
        self.templates.append((template, target))

    def match(self, method: str, path: str) -> Match[T] | None:
        """The route for ``method`` at ``path``; when only the path matches, the first such
        route with ``method_allowed=False`` so the owning dialect can answer in its envelope."""
        fallback: Match[T] | None = None
        for entry in self._exact.get(path, ()):
            if method in entry.methods:
                return Match(entry.target, entry.route_name, {}, True)
            fallback = fallback or Match(entry.target, entry.route_name, {}, False)
        for entry in self._templated:
            assert entry.pattern is not None
            found = entry.pattern.match(path)
            if found is None:
                continue
            if method in entry.methods:
                return Match(entry.target, entry.route_name, found.groupdict(), True)
            fallback = fallback or Match(entry.target, entry.route_name, found.groupdict(), False)
        return fallback
