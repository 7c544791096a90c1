"""Property-based fuzzing of the config loader and the expression parser (Hypothesis).

Whatever the input, :func:`continuum.settings.parse_config` returns a config or raises
:class:`ConfigError`, and :func:`discrete.expressions.parse_expression` (and evaluating what it
returns) an expression or :class:`ExpressionError`: no other exception escapes.  Examples
are bounded and derandomized, so the suite's run is the same every time and takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum.settings import Config, load_config, parse_config
from discrete.config import ConfigError
from discrete.expressions import FUNCTIONS, ExpressionError, parse_expression
from tests.configs import toml_value

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))
FUZZ = settings(
    max_examples=150,
    deadline=None,  # not a timed assertion: a data set example loads in > 1 s under load
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
KEYS = {name: [key.name for key in keys] for name, keys in Config.SECTIONS.items()}


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-3, max_value=70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["linear", "banded", "grid", "file", "random", "sgd", "sin(pi*x)", "x*y"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
value_texts = st.one_of(
    values.map(toml_value),
    st.integers(0, 3000).map(lambda depth: "[" * depth + "]" * depth),  # deep nesting
)


@st.composite
def documents(draw) -> str:
    """A TOML document of known sections and keys (and a few unknown ones) with any values,
    arrays nested up to 3000 deep, and perhaps a byte-order mark."""
    lines = []
    for section in draw(st.lists(st.sampled_from([*KEYS, "extra"]), max_size=5, unique=True)):
        lines.append(f"[{section}]")
        names = st.sampled_from([*KEYS.get(section, []), "widthz", "path"])
        for key in draw(st.lists(names, max_size=5, unique=True)):
            lines.append(f"{key} = {draw(value_texts)}")
    return draw(st.sampled_from(["", "\ufeff"])) + "\n".join(lines) + "\n"


@pytest.fixture(scope="module", autouse=True)
def bundled_sets_loaded() -> None:
    """Load every example once, so that the bundled data sets (and scikit-learn's import) are
    in memory before the timed examples: a cold first load takes seconds on a busy machine."""
    for path in EXAMPLES:
        load_config(path)


def loads_or_refuses(text: str) -> None:
    try:
        config = parse_config(text, source="<fuzz>")
    except ConfigError as error:
        assert str(error).startswith("<fuzz>")
    else:
        assert isinstance(config, Config)


@FUZZ
@given(documents())
def test_generated_documents_load_or_raise_config_error(text):
    loads_or_refuses(text)


@FUZZ
@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 12), st.text(max_size=12)), min_size=1, max_size=4
    ),
)
def test_mutated_examples_load_or_raise_config_error(path, edits):
    """Each edit replaces ``length`` characters at a relative ``position`` by ``text``."""
    text = path.read_text()
    for position, length, insert in edits:
        at = int(position * len(text))
        text = text[:at] + insert + text[at + length :]
    loads_or_refuses(text)


tokens = st.sampled_from(
    [
        *FUNCTIONS,
        "x",
        "y",
        "l",
        "pi",
        "z",
        "(",
        ")",
        "+",
        "-",
        "*",
        "/",
        "**",
        "^",
        ",",
        " ",
        "1",
        "0",
        "1e308",
        "1e999",
        ".5",
        "2.",
        "__import__",
        "'",
        "\\",
        "é",
        "\x00",
    ]
)


@FUZZ
@given(st.one_of(st.lists(tokens, max_size=40).map("".join), st.text(max_size=60)))
def test_expressions_parse_and_evaluate_or_raise_expression_error(text):
    try:
        expression = parse_expression(text, ("x", "y", "l"))
    except ExpressionError:
        return
    grid = np.linspace(-1.0, 1.0, 5)
    try:
        values = expression(x=grid, y=grid[::-1], l=np.arange(5))
    except ExpressionError:
        return
    assert np.all(np.isfinite(values))
