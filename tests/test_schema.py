"""The configuration schema: each key declared once, one validator, and the import layering.

The validator (:class:`discrete.schema.Section`) is checked against an independent statement of
what each kind of key accepts (:func:`accepts`) on hostile values drawn by Hypothesis; the
README's key table against the declarations; and, in subprocesses, that the schema needs no
numpy, the continuum's sections no DOLFINx, and the discrete side never imports the continuum.
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum.settings import DEFAULT_TOML, Config, default_config, parse_config
from discrete import config as discrete
from discrete.schema import REQUIRED, SIGNS, ConfigError, Key, Section, check_keys

ROOT = Path(__file__).resolve().parent.parent
DECLARED = [(name, key) for name, keys in Config.SECTIONS.items() for key in keys]
PLAIN = [(name, key) for name, key in DECLARED if not (key.contextual or key.conditional)]
FUZZ = settings(
    max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------- declared once


def test_every_key_is_declared_once_as_a_field_of_its_section():
    config = default_config()
    for name, keys in Config.SECTIONS.items():
        names = [key.name for key in keys]
        assert len(set(names)) == len(names), f"[{name}] declares a key twice"
        assert names == [item.name for item in fields(getattr(config, name))], name
    assert [item.name for item in fields(Config) if item.name in Config.SECTIONS] == list(
        Config.SECTIONS
    )


def test_the_continuum_extends_the_discrete_declarations_without_copying_them():
    discrete_sections = discrete.DiscreteConfig.SECTIONS
    assert list(Config.SECTIONS)[: len(discrete_sections)] == list(discrete_sections)
    for name, keys in discrete_sections.items():
        assert Config.SECTIONS[name] is keys
    assert set(Config.SECTIONS) - set(discrete_sections) == {"continuum", "output"}


def test_defaults_are_the_declared_defaults():
    """A config that gives only the required key holds every declared default (the keys whose
    default depends on other keys, and the conditional ones, aside)."""
    config = parse_config("[network]\nwidths = [4, 4]\n")
    for name, key in PLAIN:
        if key.default is REQUIRED:
            continue
        value = getattr(getattr(config, name), key.name)
        expected = key.default
        if isinstance(expected, float | int) and not isinstance(expected, bool):
            assert value == expected and type(value) is type(expected), (name, key.name)
        else:
            assert value == (tuple(expected) if isinstance(expected, list) else expected)


def test_readme_key_table_lists_the_declared_keys_and_their_choices():
    """Each row of the README's configuration table names its section's declared keys and no
    other at its top level (outside parentheses), and lists a choice key's choices, the
    default first."""
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `\[(\w+)\]` \| (.*) \|$", readme, re.M))
    assert list(rows) == list(Config.SECTIONS)
    for name, row in rows.items():
        keys = {key.name: key for key in Config.SECTIONS[name]}
        top = row
        while re.search(r"\([^()]*\)", top):  # parentheses, innermost first
            top = re.sub(r"\([^()]*\)", "", top)
        named = [token.split(" = ")[0] for token in re.findall(r"`([^`]+)`", top)]
        assert sorted(set(named)) == sorted(keys), name
        for key, listed in re.findall(r"`(\w+)` = ([\w\-, ]+?)\s*(?:[;(]|$)", top):
            declared = keys[key]
            if declared.kind in ("choice", "per-layer") and isinstance(declared.choices[0], str):
                choices = [choice.strip() for choice in listed.split(",")]
                assert set(choices) == set(declared.choices), f"[{name}] {key}"
                if declared.default is not None:
                    assert choices[0] == declared.default, f"[{name}] {key}: the default first"


# --------------------------------------------------------------------------- one validator


def accepts(key: Key, value: object) -> bool:
    """What a key of this kind accepts, stated independently of :mod:`discrete.schema`."""

    def integer(item: object) -> bool:
        return type(item) is int and SIGNS[key.sign](item)

    def number(item: object) -> bool:
        if type(item) not in (int, float):
            return False
        try:
            x = float(item)  # type: ignore[arg-type]
        except OverflowError:
            return False
        if not math.isfinite(x):
            return False
        if key.bounds is not None:
            return key.bounds[0] <= x <= key.bounds[1]
        return SIGNS[key.sign](x)

    if key.kind == "string":
        return type(value) is str
    if key.kind == "boolean":
        return type(value) is bool
    if key.kind == "integer":
        return integer(value)
    if key.kind == "number":
        return number(value)
    if key.kind == "choice":
        return any(type(value) is type(choice) and value == choice for choice in key.choices)
    if key.kind == "integers":
        return type(value) is list and all(integer(item) for item in value)
    if key.kind == "numbers":
        return type(value) is list and len(value) == key.length and all(map(number, value))
    assert key.kind == "names"
    return (
        type(value) is list
        and all(type(item) is str and item in key.choices for item in value)
        and len(set(value)) == len(value)
    )


scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**400), 10**400),
    st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(sorted({str(c) for _, key in DECLARED for c in key.choices})),
)
hostile = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=6)


@pytest.mark.parametrize(("name", "key"), PLAIN, ids=[f"{n}.{k.name}" for n, k in PLAIN])
@FUZZ
@given(value=hostile)
def test_a_declared_key_holds_exactly_the_values_of_its_kind(name, key, value):
    section = Section(name, {key.name: value}, "<fuzz>", Config.SECTIONS[name])
    if accepts(key, value):
        read = section.read(key.name)
        if key.kind == "number":
            assert read == float(value) and type(read) is float
        elif key.kind == "numbers":
            assert read == tuple(float(item) for item in value)
        elif isinstance(value, list):
            assert read == tuple(value)
        else:
            assert read == value and type(read) is type(value)
    else:
        with pytest.raises(ConfigError, match=rf"^<fuzz>: \[{name}\] {key.name}: expected "):
            section.read(key.name)


@pytest.mark.parametrize(("name", "key"), DECLARED, ids=[f"{n}.{k.name}" for n, k in DECLARED])
def test_an_absent_key_is_its_default_or_required(name, key):
    section = Section(name, {}, "<test>", Config.SECTIONS[name])
    if key.default is REQUIRED:
        with pytest.raises(ConfigError, match=rf"\[{name}\] {key.name}: required key is missing"):
            section.read(key.name, count=2, variables=("x",))
    elif key.default is None:
        assert section.read(key.name) is None


@pytest.mark.parametrize(("name", "key"), DECLARED, ids=[f"{n}.{k.name}" for n, k in DECLARED])
def test_a_misspelt_key_is_refused_with_a_suggestion(name, key):
    keys = Config.SECTIONS[name]
    typo = key.name + key.name[-1]  # a doubled last letter
    with pytest.raises(ConfigError) as info:
        check_keys(name, {typo: 1}, keys, "<test>")
    message = str(info.value)
    assert message.startswith(f"<test>: [{name}] unknown key '{typo}'")
    suggested = re.search(r"did you mean '(\w+)'\?", message)
    assert suggested is not None and suggested[1] in {k.name for k in keys}, message


def test_a_declaration_of_an_unknown_kind_or_sign_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        Key("x", "float", 0.0, "a number")
    with pytest.raises(ValueError, match="unknown sign"):
        Key("x", "number", 0.0, "a number", sign="negative")
    with pytest.raises(ValueError, match="choices belong"):
        Key("x", "choice", "a", "one of none")


# --------------------------------------------------------------------------- loaders


def test_the_discrete_loader_refuses_the_continuum_sections():
    for name in ("continuum", "output"):
        with pytest.raises(ConfigError) as info:
            discrete.parse_config(f"[network]\nwidths = [4, 4]\n[{name}]\nevery = 1\n")
        assert f"unknown section [{name}]" in str(info.value)
        assert "continuum.load_config reads the whole configuration" in str(info.value)


def test_a_typo_in_a_continuum_section_is_never_ignored():
    with pytest.raises(ConfigError, match=r"\[continuum\] unknown key 'degre' \(did you mean"):
        parse_config("[network]\nwidths = [4, 4]\n[continuum]\ndegre = 3\n")


def test_both_configurations_read_their_text_back():
    full = parse_config(DEFAULT_TOML)
    assert parse_config(full.text) == full
    part = discrete.parse_config(discrete.DEFAULT_TOML)
    assert discrete.parse_config(part.text) == part
    assert full.text.startswith(part.text) and "[continuum]" not in part.text


def test_replace_keeps_the_type_and_validates_again():
    config = parse_config(DEFAULT_TOML)
    changed = config.replace(continuum={"degree": 3}, output={"every": 5})
    assert type(changed) is Config
    assert (changed.continuum.degree, changed.output.every) == (3, 5)
    with pytest.raises(ConfigError, match=r"\[continuum\] degree: expected one of 1, 2"):
        config.replace(continuum={"degree": 25})


# --------------------------------------------------------------------------- layering


def imported_after(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after running ``code`` in a fresh Python."""
    listing = "print(' '.join({m.split('.')[0] for m in sys.modules}))"
    script = f"import sys\n{code}\n{listing}"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(result.stdout.split())


def test_the_schema_needs_no_numpy():
    assert "numpy" not in imported_after("import discrete.schema")


def test_the_continuum_settings_do_not_import_dolfinx():
    """Nor scipy: the modules that hold the choices import it where they use it."""
    loaded = imported_after(
        "import continuum.settings\ncontinuum.settings.load_config('examples/goldstein.toml')"
    )
    assert "continuum" in loaded
    assert not loaded & {"dolfinx", "basix", "ufl", "ffcx", "petsc4py", "scipy"}


def test_the_discrete_side_never_imports_the_continuum():
    for path in sorted((ROOT / "discrete").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "continuum" for n in names), path.name
    modules = " ".join(f"discrete.{p.stem}" for p in sorted((ROOT / "discrete").glob("*.py")))
    loading = f"import importlib\nfor m in {modules.split()!r}: importlib.import_module(m)"
    loaded = imported_after(loading)
    assert "continuum" not in loaded
