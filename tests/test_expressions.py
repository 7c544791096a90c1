"""The safe expression grammar: values, precedence, broadcasting and precise errors."""

import numpy as np
import pytest

from discrete.expressions import MAX_DEPTH, ExpressionError, parse_expression

XYM = ("x", "y", "m")


def evaluate(text: str, variables: tuple[str, ...] = XYM, **values) -> np.ndarray:
    return parse_expression(text, variables)(**values)


def assert_exact(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-15, atol=0.0)


# --------------------------------------------------------------------------- values


def test_data_formula_matches_numpy():
    l = np.arange(3)[:, None]
    y = np.linspace(0.0, 1.0, 7)[None, :]
    expression = parse_expression("sin(pi*(l+1)*y) + 0.5*cos(pi*l*y)", ("l", "y"))
    expected = np.sin(np.pi * (l + 1) * y) + 0.5 * np.cos(np.pi * l * y)
    assert_exact(expression(l=l, y=y), expected)


@pytest.mark.parametrize(
    ("text", "function"),
    [
        ("sin(x)", np.sin),
        ("cos(x)", np.cos),
        ("tan(x)", np.tan),
        ("exp(x)", np.exp),
        ("log(x)", np.log),
        ("sqrt(x)", np.sqrt),
        ("tanh(x)", np.tanh),
        ("abs(x - 1)", lambda x: np.abs(x - 1)),
    ],
)
def test_functions_match_numpy(text, function):
    x = np.linspace(0.1, 1.3, 11)
    assert_exact(evaluate(text, x=x), function(x))


def test_numbers_and_pi():
    assert evaluate("1e-3 + 2.5E2 + .5 + 3.") == 1e-3 + 2.5e2 + 0.5 + 3.0
    assert evaluate("2*pi") == 2 * np.pi


def test_integer_inputs_are_evaluated_as_floats():
    assert_exact(evaluate("x**-1", x=np.array([1, 2, 4])), np.array([1.0, 0.5, 0.25]))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-2**2", -4.0),
        ("2**3**2", 512.0),
        ("(-2)**2", 4.0),
        ("2**-1", 0.5),
        ("-x**2", -9.0),
        ("1 - 2 - 3", -4.0),
        ("8 / 4 / 2", 1.0),
        ("2 + 3 * 4", 14.0),
        ("(2 + 3) * 4", 20.0),
        ("--x", 3.0),
        ("+x", 3.0),
        ("2*-x", -6.0),
    ],
)
def test_precedence_and_associativity_follow_python(text, value):
    assert evaluate(text, x=3.0) == value


def test_huge_exponent_follows_numpy():
    assert evaluate("0.5**1e6") == 0.0


# --------------------------------------------------------------------------- broadcasting


def test_constant_broadcasts_to_the_shape_of_the_values():
    result = evaluate("1", x=np.zeros(5))
    assert result.shape == (5,) and result.dtype == np.float64
    assert np.all(result == 1.0)


def test_shape_includes_unused_values():
    result = evaluate("x + 1", x=np.zeros((4, 1)), y=np.zeros(3))
    assert result.shape == (4, 3)


def test_scalar_values_give_a_zero_dimensional_array():
    result = evaluate("x*y", x=2, y=3.5)
    assert result.shape == () and result == 7.0


def test_result_is_a_fresh_writable_array():
    x = np.ones(3)
    result = evaluate("x", x=x)
    result[0] = 5.0
    assert x[0] == 1.0


def test_used_and_allowed_variables():
    expression = parse_expression("sin(pi*x) + m", XYM)
    assert expression.used == frozenset({"x", "m"})
    assert expression.variables == XYM
    assert expression.text == "sin(pi*x) + m"


# --------------------------------------------------------------------------- parse errors


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("__import__('os')", ["unknown name '__import__'", "column 1"]),
        (
            "os.system(1)",
            ["unknown name 'os'", "column 1", '"os.system(1)"', "allowed: x, y, m, pi"],
        ),
        ("x.real", ["unexpected character '.'", "column 2"]),
        ("open('f')", ["unknown name 'open'", "not an allowed function"]),
        ("1;2", ["unexpected character ';'", "column 2"]),
        ("lambda: 1", ["unknown name 'lambda'", "column 1"]),
        ("[1]", ["unexpected character '['", "column 1"]),
        ("x if x else 1", ["unexpected 'if'", "column 3"]),
        ("'a'", ['unexpected character "\'"', "string literals are not allowed"]),
        ("sin(x", ["unbalanced parenthesis '('", "column 4", "never closed"]),
        ("(1 + 2))", ["unmatched ')'", "column 8"]),
        ("sin x", ["function 'sin' without parentheses", "column 1"]),
        ("sin + 1", ["function 'sin' without parentheses", "column 1"]),
        ("foo(x)", ["unknown name 'foo'", "'foo' is not an allowed function"]),
        ("x(2)", ["call of variable 'x'", "column 1"]),
        ("pi(2)", ["call of constant 'pi'", "column 1"]),
        ("sin(1, 2)", ["wrong number of arguments to 'sin'", "got 2"]),
        ("cos()", ["wrong number of arguments to 'cos'", "got 0"]),
        ("2 @ x", ["unsupported operator '@'", "column 3"]),
        ("x // 2", ["unsupported operator '//'", "column 3"]),
        ("x % 2", ["unsupported operator '%'", "column 3"]),
        ("x = 1", ["unsupported operator '='", "column 3"]),
        ("x ^ 2", ["unsupported operator '^'", "use '**'"]),
        ("1 +", ["unexpected end of expression", "column 4"]),
        ("1 * / 2", ["unexpected '/'", "column 5"]),
        ("2x", ["invalid number '2x'", "column 1"]),
        ("1e400", ["number '1e400' is too large"]),
        ("e", ["unknown name 'e'"]),
        ("z + 1", ["unknown name 'z'", "column 1"]),
        ("x\u00b2", ["unexpected character '\u00b2'", "column 2"]),
    ],
)
def test_malformed_expressions_name_the_offending_token(text, fragments):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, XYM)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_expression(text):
    with pytest.raises(ExpressionError, match="empty expression"):
        parse_expression(text, XYM)


def test_too_long_expression():
    with pytest.raises(ExpressionError, match=r"too long \(1001 characters, at most 1000\)"):
        parse_expression("x" + "+x" * 500, XYM)


@pytest.mark.parametrize(
    ("text", "column", "token"),
    [
        ("(" * 200 + "1" + ")" * 200, MAX_DEPTH + 1, "'('"),
        ("-" * 200 + "x", MAX_DEPTH + 1, "'-'"),
        ("sin(" * 150 + "x" + ")" * 150, 4 * MAX_DEPTH + 4, "'('"),
        ("2" + "**2" * 200, 3 * MAX_DEPTH + 2, "'**'"),
    ],
)
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(text, column, token):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, XYM)
    assert f"nesting too deep at {token} at column {column}" in str(info.value)


def test_nesting_up_to_the_limit_is_accepted():
    text = "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert evaluate(text, x=2.0) == 2.0


def test_long_flat_sum_evaluates():
    assert evaluate("+".join(["x"] * 500), x=1.0) == 500.0


@pytest.mark.parametrize("name", ["pi", "sin", "2x", "a-b"])
def test_invalid_variable_names_are_refused(name):
    with pytest.raises(ValueError, match="invalid variable name"):
        parse_expression("1", (name,))


# --------------------------------------------------------------------------- evaluation errors


def test_missing_variable():
    with pytest.raises(ExpressionError, match="no value given for 'y'"):
        evaluate("x + y", x=1.0)


def test_variable_outside_the_allowed_set():
    with pytest.raises(ExpressionError, match="unknown variable 'z'"):
        evaluate("x", x=1.0, z=2.0)


def test_incompatible_shapes():
    with pytest.raises(ExpressionError, match=r"incompatible shapes x \(2,\), y \(3,\)"):
        evaluate("x + y", x=np.zeros(2), y=np.zeros(3))


def test_non_real_values():
    with pytest.raises(ExpressionError, match="'x' must be real numbers"):
        evaluate("x", x=np.array([1j]))


@pytest.mark.parametrize(
    ("text", "x", "message"),
    [
        ("log(x)", [1.0, 0.0, 2.0], "evaluated to -inf at index (1,) where x=0"),
        ("sqrt(x)", [4.0, 1.0, -1.0], "evaluated to NaN at index (2,) where x=-1"),
        ("exp(x)", [1.0, 1000.0, 2.0], "evaluated to inf at index (1,) where x=1000"),
        ("1/x", 0.0, "evaluated to inf at x=0"),
    ],
)
def test_non_finite_results_are_reported(text, x, message):
    with pytest.raises(ExpressionError) as info, np.errstate(all="raise"):
        evaluate(text, x=np.asarray(x))
    assert message in str(info.value)
