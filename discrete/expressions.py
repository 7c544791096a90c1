"""Safe arithmetic expressions over a fixed set of variables.

Configuration files describe data, targets and initial weights by formulas such as
``"sin(pi*(l+1)*y)"``. This module turns such text into a vectorised numpy evaluator without
ever handing it to Python (no ``eval``, ``exec``, ``compile`` or ``ast``): a small tokenizer and
a recursive-descent parser accept exactly the grammar below and reject everything else with an
:class:`ExpressionError` that names the offending token and its column.

Grammar (``**`` is right-associative and binds tighter than unary minus, as in Python)::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("+" | "-") unary | power
    power      := primary ("**" unary)?
    primary    := NUMBER | "pi" | VARIABLE | FUNCTION "(" expression ")" | "(" expression ")"

where FUNCTION is one of ``sin cos tan exp log sqrt tanh abs`` and VARIABLE is one of the names
the caller allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

MAX_LENGTH = 1000
"""Longest accepted expression text, in characters."""

MAX_DEPTH = 100
"""Deepest accepted nesting of parentheses, calls, signs and exponents."""

FUNCTIONS: dict[str, Callable[[ArrayLike], np.ndarray]] = {
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "abs": np.abs,
}
"""The one-argument functions an expression may call."""

_BINARY: dict[str, Callable[[ArrayLike, ArrayLike], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "**": np.power,
}

_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_OPERATORS = ("**", "+", "-", "*", "/", "(", ")", ",")
# Operators Python has but the grammar does not; two-character ones first.
_UNSUPPORTED = "// == != <= >= << >> % @ ^ & | ~ < > = !".split()
_HINTS = {"//": "use '/' for division", "^": "use '**' for powers"}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated.

    The message names the offending token, its 1-based column and the expression text.
    """


def _error(text: str, problem: str, column: int, hint: str = "") -> ExpressionError:
    """Build an error for ``problem`` found at ``column`` of ``text``."""
    message = f'{problem} at column {column} in "{text}"'
    return ExpressionError(f"{message}; {hint}" if hint else message)


# --------------------------------------------------------------------------- evaluation tree


@dataclass(frozen=True)
class _Constant:
    value: float

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.float64:
        return np.float64(self.value)


@dataclass(frozen=True)
class _Variable:
    name: str

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        return env[self.name]


@dataclass(frozen=True)
class _Negate:
    operand: _Node

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.negative(self.operand.evaluate(env))


@dataclass(frozen=True)
class _Binary:
    operator: str
    left: _Node
    right: _Node

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        return _BINARY[self.operator](self.left.evaluate(env), self.right.evaluate(env))


@dataclass(frozen=True)
class _Call:
    function: str
    argument: _Node

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        return FUNCTIONS[self.function](self.argument.evaluate(env))


_Node = _Constant | _Variable | _Negate | _Binary | _Call


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "operator" or "end"
    text: str
    column: int  # 1-based


class _Lexer:
    """Splits expression text into tokens, one at a time, so that errors come in reading order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def next_token(self) -> _Token:
        text = self.text
        while self.position < len(text) and text[self.position] in " \t\r\n":
            self.position += 1
        start = self.position
        column = start + 1
        if start == len(text):
            return _Token("end", "", column)

        if number := _NUMBER.match(text, start):
            tail = _WORD_TAIL.match(text, start)
            assert tail is not None, "the word pattern matches the empty word"
            word = tail.group()
            if len(word) > len(number.group()):
                raise _error(text, f"invalid number '{word}'", column)
            return self._take("number", number.group(), column)
        if name := _NAME.match(text, start):
            return self._take("name", name.group(), column)
        for operator in _UNSUPPORTED:
            if text.startswith(operator, start):
                hint = _HINTS.get(operator, "")
                raise _error(text, f"unsupported operator '{operator}'", column, hint)
        for operator in _OPERATORS:
            if text.startswith(operator, start):
                return self._take("operator", operator, column)

        character = text[start]
        hint = "string literals are not allowed" if character in "'\"" else ""
        raise _error(text, f"unexpected character {character!r}", column, hint)

    def _take(self, kind: str, text: str, column: int) -> _Token:
        self.position += len(text)
        return _Token(kind, text, column)


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive-descent parser producing an evaluation tree (see the module grammar)."""

    def __init__(self, text: str, variables: tuple[str, ...]) -> None:
        self.text = text
        self.variables = variables
        self.used: set[str] = set()
        self.depth = 0
        self.lexer = _Lexer(text)
        self.token = self.lexer.next_token()

    def parse(self) -> _Node:
        node = self._expression()
        if self._at(")"):
            raise self._fail("unmatched ')'", self.token.column)
        if self.token.kind != "end":
            raise self._unexpected("an operator or the end of the expression")
        return node

    # ----- helpers

    def _fail(self, problem: str, column: int, hint: str = "") -> ExpressionError:
        return _error(self.text, problem, column, hint)

    def _unexpected(self, expected: str) -> ExpressionError:
        token = self.token
        found = "end of expression" if token.kind == "end" else f"'{token.text}'"
        return self._fail(f"unexpected {found}", token.column, f"expected {expected}")

    def _at(self, *operators: str) -> bool:
        return self.token.kind == "operator" and self.token.text in operators

    def _advance(self) -> _Token:
        token = self.token
        self.token = self.lexer.next_token()
        return token

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        """Count one level of nesting opened by ``token``, refusing to go deeper than allowed."""
        if self.depth == MAX_DEPTH:
            raise self._fail(
                f"nesting too deep at '{token.text}'",
                token.column,
                f"at most {MAX_DEPTH} levels of parentheses, calls, signs and powers are allowed",
            )
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def _close(self, opening: _Token) -> None:
        """Consume the ')' matching ``opening``."""
        if self._at(")"):
            self._advance()
        elif self.token.kind == "end":
            raise self._fail("unbalanced parenthesis '('", opening.column, "it is never closed")
        else:
            raise self._unexpected("')' or an operator")

    def _followed_by_call(self, token: _Token) -> bool:
        """Whether the next non-blank character after ``token`` opens a parenthesis."""
        rest = self.text[token.column - 1 + len(token.text) :]
        return rest.lstrip().startswith("(")

    def _allowed(self) -> str:
        names = ", ".join((*self.variables, "pi"))
        return f"allowed: {names} and functions {', '.join(FUNCTIONS)}"

    # ----- grammar rules

    def _expression(self) -> _Node:
        node = self._term()
        while self._at("+", "-"):
            operator = self._advance().text
            node = _Binary(operator, node, self._term())
        return node

    def _term(self) -> _Node:
        node = self._unary()
        while self._at("*", "/"):
            operator = self._advance().text
            node = _Binary(operator, node, self._unary())
        return node

    def _unary(self) -> _Node:
        if not self._at("+", "-"):
            return self._power()
        sign = self._advance()
        with self._nested(sign):
            operand = self._unary()
        return _Negate(operand) if sign.text == "-" else operand

    def _power(self) -> _Node:
        base = self._primary()
        if not self._at("**"):
            return base
        operator = self._advance()
        with self._nested(operator):
            exponent = self._unary()
        return _Binary("**", base, exponent)

    def _primary(self) -> _Node:
        token = self.token
        if token.kind == "number":
            self._advance()
            value = float(token.text)
            if math.isinf(value):
                raise self._fail(f"number '{token.text}' is too large", token.column)
            return _Constant(value)
        if token.kind == "name":
            return self._name()
        if self._at("("):
            self._advance()
            with self._nested(token):
                node = self._expression()
            self._close(token)
            return node
        raise self._unexpected("a number, a name, a function call or '('")

    def _name(self) -> _Node:
        token = self.token
        name = token.text
        if name in FUNCTIONS:
            return self._call()
        if name == "pi" or name in self.variables:
            if self._followed_by_call(token):
                role = "constant" if name == "pi" else "variable"
                raise self._fail(
                    f"call of {role} '{name}'",
                    token.column,
                    f"only functions can be called: {', '.join(FUNCTIONS)}",
                )
            self._advance()
            if name == "pi":
                return _Constant(math.pi)
            self.used.add(name)
            return _Variable(name)
        if self._followed_by_call(token):
            raise self._fail(
                f"unknown name '{name}'",
                token.column,
                f"'{name}' is not an allowed function; allowed functions: {', '.join(FUNCTIONS)}",
            )
        raise self._fail(f"unknown name '{name}'", token.column, self._allowed())

    def _call(self) -> _Node:
        function = self._advance()
        if not self._at("("):
            raise self._fail(
                f"function '{function.text}' without parentheses",
                function.column,
                f"write {function.text}(...)",
            )
        opening = self._advance()
        arguments = []
        if not self._at(")"):
            with self._nested(opening):
                arguments.append(self._expression())
                while self._at(","):
                    self._advance()
                    arguments.append(self._expression())
        self._close(opening)
        if len(arguments) != 1:
            raise self._fail(
                f"wrong number of arguments to '{function.text}'",
                function.column,
                f"it takes exactly one, got {len(arguments)}",
            )
        return _Call(function.text, arguments[0])


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Expression:
    """A parsed expression, callable with numpy arrays for its variables.

    Attributes:
        text: The expression as written.
        variables: The names the expression was allowed to use.
        used: The names it actually uses.
    """

    text: str
    variables: tuple[str, ...]
    used: frozenset[str]
    _tree: _Node = field(repr=False, compare=False)

    def __call__(self, /, **values: ArrayLike) -> np.ndarray:
        """Evaluate the expression elementwise with numpy broadcasting.

        Args:
            **values: A scalar or array for each used variable; allowed but unused variables
                may be passed too.

        Returns:
            A new float64 array with the broadcast shape of all passed values.

        Raises:
            ExpressionError: A value is missing, not allowed, not real, the shapes do not
                broadcast, or the result contains NaN or infinity.
        """
        if not values.keys() <= set(self.variables):
            unknown = sorted(set(values) - set(self.variables))
            allowed = ", ".join(self.variables) or "none"
            raise ExpressionError(
                f"cannot evaluate \"{self.text}\": unknown variable '{unknown[0]}'; "
                f"allowed: {allowed}"
            )
        if not self.used <= values.keys():
            missing = sorted(self.used - set(values))
            raise ExpressionError(
                f'cannot evaluate "{self.text}": no value given for '
                + ", ".join(f"'{name}'" for name in missing)
            )
        arrays = {name: self._real_array(name, value) for name, value in values.items()}
        try:
            shape = np.broadcast_shapes(*(array.shape for array in arrays.values()))
        except ValueError:
            shapes = ", ".join(f"{name} {array.shape}" for name, array in arrays.items())
            raise ExpressionError(
                f'cannot evaluate "{self.text}": variables have incompatible shapes {shapes}'
            ) from None
        with np.errstate(all="ignore"):
            value = self._tree.evaluate(arrays)
        # a new array of the broadcast shape (the tree may return an input itself)
        result = np.array(value if value.shape == shape else np.broadcast_to(value, shape), float)
        finite = np.isfinite(result)
        if not finite.all():
            raise self._non_finite(result, finite, arrays)
        return result

    def _real_array(self, name: str, value: ArrayLike) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind not in "iuf":
            raise ExpressionError(
                f"cannot evaluate \"{self.text}\": variable '{name}' must be real numbers, "
                f"got dtype {array.dtype}"
            )
        return array.astype(np.float64, copy=False)

    def _non_finite(
        self, result: np.ndarray, finite: np.ndarray, arrays: Mapping[str, np.ndarray]
    ) -> ExpressionError:
        """Describe the first entry of ``result`` that is NaN or infinite."""
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        value = "NaN" if np.isnan(result[index]) else f"{result[index]:g}"
        inputs = ", ".join(
            f"{name}={np.broadcast_to(arrays[name], result.shape)[index]:g}"
            for name in self.variables
            if name in self.used
        )
        where = f" where {inputs}" if inputs else ""
        location = f" at index {index}{where}" if index else (f" at {inputs}" if inputs else "")
        count = int(np.count_nonzero(~finite))
        return ExpressionError(
            f'expression "{self.text}" evaluated to {value}{location}; '
            f"{count} of {result.size} values are NaN or infinite"
        )


def parse_expression(text: str, variables: tuple[str, ...]) -> Expression:
    """Parse ``text`` into an :class:`Expression` over the allowed ``variables``.

    Args:
        text: The expression, at most :data:`MAX_LENGTH` characters.
        variables: Names the expression may use besides the constant ``pi`` and the
            functions in :data:`FUNCTIONS`.

    Raises:
        ExpressionError: The text is not a valid expression; the message names the offending
            token and its column.
        ValueError: A variable name is not an identifier or clashes with ``pi`` or a function.
    """
    variables = tuple(variables)
    for name in variables:
        if not _NAME.fullmatch(name) or name == "pi" or name in FUNCTIONS:
            raise ValueError(f"invalid variable name {name!r}")
    if len(set(variables)) != len(variables):
        raise ValueError(f"duplicate variable names in {variables}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(text)} characters, at most {MAX_LENGTH}): "
            f'"{text[:40]}..."'
        )
    if not text.strip():
        raise ExpressionError(f'empty expression "{text}"')
    parser = _Parser(text, variables)
    tree = parser.parse()
    return Expression(text, variables, frozenset(parser.used), tree)
