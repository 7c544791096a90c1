"""The configuration schema: every key declared once, as data, and one validator that reads them.

A section of a configuration file (a TOML table) is described by a tuple of :class:`Key`
declarations: the key's name, its :data:`KINDS` entry, its default, its choices or sign or
bounds, and a one-line doc.  :meth:`Section.read` reads any declared key of a table against its
declaration and raises a :class:`ConfigError` naming ``[section] key`` and the problem;
:meth:`Section.read_plain` reads every key that needs nothing but its own value;
:func:`check_keys` refuses keys a section does not declare, with a suggestion for likely typos.
Keys whose meaning depends on other keys (``conditional``) are read by their section's parser
through the same :meth:`Section.read`, after the small cross-key checks that it names.

Standard library only (no numpy), so that the continuum side declares its sections with the same
machinery; formulas are parsed by :func:`discrete.expressions.parse_expression`, imported when a
formula is read.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from .expressions import Expression


class ConfigError(ValueError):
    """An invalid configuration; the message names the source, ``[section] key`` and problem
    (re-exported by :mod:`discrete.errors` and :mod:`discrete.config`)."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default marking a key that must be present."""

_DECLARED: Any = object()
"""The ``default`` of :meth:`Section.read` that stands for the key's declared default."""

KINDS = (
    "string",
    "boolean",
    "integer",
    "number",
    "choice",
    "integers",
    "numbers",
    "names",
    "per-layer",
    "expression",
)
"""What a key holds: a string, true/false, an integer, a number (an integer is accepted), one of
``choices`` (strings or integers), a list of integers, a list of ``length`` numbers, a list of
distinct names from ``choices``, one choice or a list with one per layer, a formula."""

SIGNS = {
    "": lambda value: True,
    "positive": lambda value: value > 0,
    "non-negative": lambda value: value >= 0,
}
"""Sign qualifiers of integers and numbers: the word used in messages and its check."""

SHOW_LIMIT = 120
"""Characters of a value shown in an error message before it is cut with ``…``."""


@dataclass(frozen=True)
class Key:
    """The declaration of one key: ``name``, ``kind`` (one of :data:`KINDS`), ``default``
    (:data:`REQUIRED` when it must be given; ``None`` when absence means "not set"), the
    ``choices`` of choice, name-list and per-layer keys, the ``sign`` of integers and numbers,
    the closed ``bounds`` of a number, the ``length`` of a number list, and ``doc``.

    ``conditional`` marks a key that applies only beside certain values of other keys, or whose
    default depends on them: its section's parser reads it, with the cross-key check it names.
    """

    name: str
    kind: str
    default: Any
    doc: str
    choices: tuple[Any, ...] = ()
    sign: str = ""
    bounds: tuple[float, float] | None = None
    length: int | None = None
    conditional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if self.sign not in SIGNS:
            raise ValueError(f"{self.name}: unknown sign {self.sign!r}")
        if (self.kind in ("choice", "names", "per-layer")) != bool(self.choices):
            raise ValueError(f"{self.name}: choices belong to choice, names and per-layer keys")

    @property
    def contextual(self) -> bool:
        """Whether reading the key needs more than its value (a layer count, formula variables)."""
        return self.kind in ("per-layer", "expression")


def show(value: object, depth: int = 0) -> str:
    """Write a TOML value the way it appears in a file (for error messages), cut to
    :data:`SHOW_LIMIT` characters and 8 levels of nesting."""
    if depth > 8:
        return "…"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value[: 2 * SHOW_LIMIT], ensure_ascii=False)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(item, depth + 1) for item in value[:SHOW_LIMIT]) + "]"
    elif isinstance(value, dict):
        items = list(value.items())[:SHOW_LIMIT]
        text = "{" + ", ".join(f"{key} = {show(item, depth + 1)}" for key, item in items) + "}"
    elif is_integer(value) and abs(value) >= 10**SHOW_LIMIT:
        text = f"an integer of {len(str(abs(value)))} digits"
    else:
        text = str(value)
    return text if len(text) <= SHOW_LIMIT else text[: SHOW_LIMIT - 1] + "…"


def one_of(choices: Iterable[object]) -> str:
    """``one of "a", "b"`` (choices as they are written in a file)."""
    return "one of " + ", ".join(show(choice) for choice in choices)


def suggestion(word: str, candidates: Iterable[str], decorate: str = "'{}'") -> str:
    """`` (did you mean ...?)`` for a close match of ``word``, or ``""``."""
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {decorate.format(matches[0])}?)" if matches else ""


def is_integer(value: object) -> TypeGuard[int]:
    """A TOML integer (a boolean is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_float(value: object) -> float | None:
    """``value`` as a finite float if it is a TOML integer or float, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _is_choice(value: object, choices: tuple[Any, ...]) -> bool:
    """``value`` is one of ``choices`` and of its type (``true`` is not the integer 1)."""
    return any(type(value) is type(choice) and value == choice for choice in choices)


def check_keys(name: str, table: dict[str, Any], keys: tuple[Key, ...], source: str) -> None:
    """Refuse any key of ``[name]`` that ``keys`` does not declare (with a suggestion).

    Raises:
        ConfigError: ``[name] unknown key 'k' (did you mean ...?)``, or the keys it has.
    """
    names = tuple(key.name for key in keys)
    for key in table:
        if key not in names:
            hint = suggestion(key, names) or "; keys: " + ", ".join(names)
            raise ConfigError(f"{source}: [{name}] unknown key '{key}'{hint}")


class Section:
    """The table of ``[name]`` in ``source`` and its key declarations, read with the checks
    that the declarations state; every failure is a :class:`ConfigError` naming the key."""

    def __init__(
        self, name: str, values: dict[str, Any], source: str, keys: tuple[Key, ...]
    ) -> None:
        self.name = name
        self.values = values
        self.source = source
        self.keys = {key.name: key for key in keys}

    def has(self, key: str) -> bool:
        return key in self.values

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.name}] {key}: {problem}")

    def default(self, name: str) -> Any:
        """The declared default of ``name``."""
        return self.keys[name].default

    def read_plain(self) -> dict[str, Any]:
        """Every declared key that needs only its own value (neither conditional nor
        contextual), read in declaration order."""
        return {
            name: self.read(name)
            for name, key in self.keys.items()
            if not (key.conditional or key.contextual)
        }

    def read(
        self,
        name: str,
        *,
        count: int = 0,
        what: str = "",
        variables: tuple[str, ...] = (),
        default: Any = _DECLARED,
    ) -> Any:
        """The value of key ``name`` (its default when absent), checked against its declaration.

        ``count`` and ``what`` are the number of layers and the word for a layer of a per-layer
        key; ``variables`` are the names a formula may use; ``default`` replaces the declared
        default where the section's parser has derived it from other keys.

        Raises:
            ConfigError: a required key is missing, or the value is not what the key holds.
        """
        key = self.keys[name]
        fallback = key.default if default is _DECLARED else default
        if name in self.values:
            value = self.values[name]
        elif fallback is REQUIRED:
            raise self.error(name, "required key is missing")
        elif fallback is None:
            return None
        else:
            value = fallback
        if key.kind == "expression":
            return self._expression(key, value, variables, fallback)
        if key.kind == "per-layer":
            return self._per_layer(key, value, count, what)
        return self._check(key, value)

    def _check(self, key: Key, value: Any) -> Any:
        kind, sign, choices = key.kind, key.sign, key.choices
        if kind == "string":
            if not isinstance(value, str):
                raise self.error(key.name, f"expected a string, got {show(value)}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self.error(key.name, f"expected true or false, got {show(value)}")
            return value
        if kind == "integer":
            if not (is_integer(value) and SIGNS[sign](value)):
                words = f"{sign} integer".strip()
                raise self.error(key.name, f"expected {_a(words)}, got {show(value)}")
            return value
        if kind == "number":
            return self._number(key, value)
        if kind == "choice":
            if not _is_choice(value, choices):
                names = [choice for choice in choices if isinstance(choice, str)]
                hint = suggestion(value, names, '"{}"') if isinstance(value, str) else ""
                raise self.error(key.name, f"expected {one_of(choices)}, got {show(value)}{hint}")
            return value
        if kind == "integers":
            if not isinstance(value, list | tuple) or not all(
                is_integer(item) and SIGNS[sign](item) for item in value
            ):
                words = f"{sign} integers".strip()
                raise self.error(key.name, f"expected a list of {words}, got {show(value)}")
            return tuple(value)
        if kind == "numbers":
            numbers = [as_float(item) for item in value] if isinstance(value, list | tuple) else []
            if len(numbers) != key.length or None in numbers:
                raise self.error(
                    key.name, f"expected a list of {key.length} numbers, got {show(value)}"
                )
            return tuple(numbers)
        # names: distinct entries of ``choices``
        if (
            not isinstance(value, list | tuple)
            or not all(isinstance(item, str) and item in choices for item in value)
            or len(set(value)) != len(value)
        ):
            raise self.error(
                key.name,
                f"expected a list of distinct names from {show(choices)}, got {show(value)}",
            )
        return tuple(value)

    def _number(self, key: Key, value: Any) -> float:
        number = as_float(value)
        if key.bounds is not None:
            low, high = key.bounds
            if number is None or not low <= number <= high:
                interval = f"[{low:g}, {high:g}]"
                raise self.error(key.name, f"expected a number in {interval}, got {show(value)}")
            return number
        if number is None or not SIGNS[key.sign](number):
            words = f"{key.sign} number".strip()
            raise self.error(key.name, f"expected {_a(words)}, got {show(value)}")
        return number

    def _per_layer(self, key: Key, value: Any, count: int, what: str) -> tuple[str, ...]:
        """One choice for all ``count`` layers, or a list with one choice per layer."""
        if isinstance(value, str) and value in key.choices:
            return (value,) * count
        if (
            not isinstance(value, list)
            or len(value) != count
            or not all(isinstance(item, str) and item in key.choices for item in value)
        ):
            raise self.error(
                key.name,
                f"expected {one_of(key.choices)}, or a list of {count} of them (one per {what}), "
                f"got {show(value)}",
            )
        return tuple(value)

    def _expression(
        self, key: Key, value: Any, variables: tuple[str, ...], fallback: Any
    ) -> Expression:
        from .expressions import ExpressionError, parse_expression

        if not isinstance(value, str):
            raise self.error(key.name, f"expected a formula in quotes, got {show(value)}")
        try:
            return parse_expression(value, variables)
        except ExpressionError as exc:
            origin = "" if self.has(key.name) else f" (the default {show(fallback)})"
            raise self.error(key.name, f"invalid formula{origin}: {exc}") from None
