"""The tests' problem builder (tests/configs.py): every base problem is a valid configuration
whose text reads back to its document, and overrides replace, append and remove as documented."""

import math
import tomllib

import numpy as np
import pytest

from tests.configs import PROBLEMS, document, load, problem, toml_text, toml_value


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_base_problem_reads_back_to_its_document_and_loads(name):
    assert tomllib.loads(problem(name)) == PROBLEMS[name]
    config = load(name)
    assert list(config.network.widths) == PROBLEMS[name]["network"]["widths"]
    assert config.data.samples == PROBLEMS[name]["data"]["samples"]


def test_overrides_replace_append_and_remove_keys_and_sections():
    doc = document(
        "perceptron",
        network={"widths": [4, 4], "bias": False},
        init={"bias": None},
        training=None,
        output={"every": 2},
    )
    assert doc["network"] == {"widths": [4, 4], "activation": "linear", "bias": False}
    assert doc["init"] == {"weight": "0.5*sin(pi*x)*cos(pi*y)"}
    assert list(doc) == ["network", "data", "init", "continuum", "output"]
    assert doc["output"] == {"every": 2}
    assert PROBLEMS["perceptron"]["init"]["bias"] == "0.1*x"  # the base is left as it was
    assert document(doc, network={"widths": [5, 5]})["network"]["bias"] is False
    assert tomllib.loads(problem(doc)) == doc
    with pytest.raises(KeyError, match="biass"):
        document("perceptron", init={"biass": None})
    with pytest.raises(KeyError, match="output"):
        document("perceptron", output=None)


def test_values_are_written_as_toml_reads_them():
    values = {
        "float": 0.1,
        "tiny": np.float64(1e-10),
        "whole": 2.0,
        "big": 10**30,
        "count": np.int64(3),
        "flag": True,
        "text": 'say "x" \\ then\ta\nb',
        "accent": "ä",
        "nested": [1, [2.5, "a"], (False,)],
        "inf": -math.inf,
    }
    back = tomllib.loads(toml_text({"t": values}))["t"]
    assert back == {
        "float": 0.1,
        "tiny": 1e-10,
        "whole": 2.0,
        "big": 10**30,
        "count": 3,
        "flag": True,
        "text": 'say "x" \\ then\ta\nb',
        "accent": "ä",
        "nested": [1, [2.5, "a"], [False]],
        "inf": -math.inf,
    }
    assert isinstance(back["whole"], float) and isinstance(back["count"], int)
    assert math.isnan(tomllib.loads(f"v = {toml_value(math.nan)}")["v"])
    with pytest.raises(TypeError, match="not a TOML value"):
        toml_value(None)
