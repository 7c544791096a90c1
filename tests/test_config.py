"""TOML configuration: defaults, normalisation and precise validation errors."""

import os
from pathlib import Path

import numpy as np
import pytest

from continuum.settings import DEFAULT_TOML, default_config, load_config, parse_config
from discrete.config import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MINIMAL = "[network]\nwidths = [4, 4]\n"


def config_error(text: str) -> str:
    """The message of the ConfigError that ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


# --------------------------------------------------------------------------- the default


def test_default_config_is_the_linear_perceptron():
    config = default_config()
    assert parse_config(DEFAULT_TOML, source="<default>") == config
    assert parse_config(config.text, source="<default>") == config  # the resolved text
    assert config.experiment.name == "perceptron"
    assert config.network.widths == (32, 32)
    assert config.network.activation == "linear"
    assert config.network.connectivity == ("dense",)
    assert config.coordinates.layout == ("line", "line")
    assert config.data.samples == 3
    assert config.training.rule == "flow"
    assert config.training.steps == 100
    assert config.training.t_end == 1.0
    assert config.continuum.degree == 2
    assert config.continuum.dt is None
    assert config.output.every == 10


def test_default_formulas_evaluate_as_written():
    data = default_config().data
    l = np.arange(3)[:, None]
    y = np.linspace(0.0, 1.0, 5)[None, :]
    np.testing.assert_allclose(
        data.input(l=l, y=y),
        np.sin(np.pi * (l + 1) * y) + 0.5 * np.cos(np.pi * l * y),
        rtol=1e-15,
    )
    np.testing.assert_allclose(
        data.target(l=l, x=y), np.cos(np.pi * (l + 1) * y) * (1 + y), rtol=1e-15
    )


def test_example_file_is_the_default_text():
    path = EXAMPLES / "perceptron.toml"
    assert path.read_text(encoding="utf-8") == DEFAULT_TOML
    loaded = load_config(path)
    default = default_config()
    for section in ("experiment", "network", "coordinates", "data", "init", "training"):
        assert getattr(loaded, section) == getattr(default, section)
    assert loaded.source == str(path)


def test_defaults_of_a_minimal_config():
    config = parse_config(MINIMAL)
    assert config.experiment.name == "experiment"
    assert config.network.quadratic == (0.0, 1.0, 0.5)
    assert config.network.offsets == (0, 1)
    assert config.network.bias is True
    assert config.coordinates.placement == "cell"
    assert config.coordinates.weights == "product"
    assert config.data.kind == "expression"
    assert config.data.samples == 4
    assert config.data.input.text == "sin(pi*(l+1)*y)"
    assert config.data.path is None
    assert config.init.weight.variables == ("x", "y", "x1", "x2", "y1", "y2", "i", "j", "m")
    assert config.training.steps == 100 and config.training.t_end is None
    assert config.continuum.scheme is None and config.continuum.theta == 0.5
    assert config.output.fields == ("w", "b", "cost", "energy")


# --------------------------------------------------------------------------- normalisation


def test_per_layer_choices_are_normalised_to_tuples():
    config = parse_config(
        '[network]\nwidths = [9, 4, 3]\nconnectivity = "banded"\n'
        '[coordinates]\nlayout = ["line", "grid", "line"]\nweights = "unit-cell"\n'
    )
    assert config.network.connectivity == ("banded", "banded")
    assert config.coordinates.layout == ("line", "grid", "line")


def test_grid_layers_name_their_coordinates():
    config = parse_config(
        '[network]\nwidths = [9, 16]\n[coordinates]\nlayout = "grid"\n'
        '[data]\ninput = "y1*y2 + l"\ntarget = "x1 - x2"\n'
    )
    assert config.data.input.variables == ("l", "y1", "y2")
    assert config.data.target.variables == ("l", "x1", "x2")


def test_integers_are_accepted_for_floats():
    training = parse_config(MINIMAL + "[training]\nlr = 2\ndt = 0.1\nsteps = 7\n").training
    assert training.lr == 2.0 and isinstance(training.lr, float)
    assert training.steps == 7


def test_t_end_is_converted_to_steps():
    training = parse_config(MINIMAL + "[training]\ndt = 0.1\nt_end = 0.3\n").training
    assert training.steps == 3 and training.t_end == 0.3


def test_relative_data_path_is_resolved_against_the_config_file(tmp_path):
    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / "config.toml"
    path.write_text(MINIMAL + '[data]\nkind = "file"\npath = "../arrays/data.npz"\n')
    config = load_config(path)
    assert config.data.path == os.path.normpath(tmp_path / "arrays" / "data.npz")
    assert parse_config(path.read_text()).data.path == "../arrays/data.npz"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[network]\nwidht = [3, 3]\n",
            "[network] unknown key 'widht' (did you mean 'widths'?)",
        ),
        ("[netwrk]\nwidths = [3, 3]\n", "unknown section [netwrk] (did you mean [network]?)"),
        (MINIMAL + "[plots]\nx = 1\n", "unknown section [plots]; sections: [experiment]"),
        (
            "[network]\nwidths = [3, -1]\n",
            "[network] widths: expected a list of positive integers, got [3, -1]",
        ),
        (
            "[network]\nwidths = [3, true]\n",
            "[network] widths: expected a list of positive integers, got [3, true]",
        ),
        ("[network]\nwidths = [3]\n", "[network] widths: expected at least 2 layers"),
        (  # a ValueError naming no key when the network was built, before
            '[network]\nwidths = [16, 32]\nconnectivity = "banded"\n',
            '[network] widths: banded weight layer 0 with ends = "periodic" wraps its band',
        ),
        ('[experiment]\nname = "x"\n', "[network] widths: required key is missing"),
        (
            MINIMAL + "[training]\nsteps = true\n",
            "[training] steps: expected a positive integer, got true",
        ),
        (
            MINIMAL + 'activation = "sigmoid"\n',
            '[network] activation: expected one of "linear", "quadratic", "tanh", "softplus", '
            '"relu", got "sigmoid"',
        ),
        (MINIMAL + 'activation = "tanhh"\n', '(did you mean "tanh"?)'),
        (MINIMAL + "bias = 1\n", "[network] bias: expected true or false, got 1"),
        (
            MINIMAL + "offsets = [0, 1, 0]\n",
            "[network] offsets: expected a non-empty list of distinct integers",
        ),
        (
            MINIMAL + 'connectivity = ["dense", "dense"]\n',
            "or a list of 1 of them (one per weight layer)",
        ),
        (
            MINIMAL + "[training]\nsteps = 10\nt_end = 1.0\n",
            "[training] t_end: cannot be combined with [training] steps = 10",
        ),
        (
            MINIMAL + "[training]\nt_end = 1.005\n",
            "[training] t_end: 1.005 is not a multiple of dt = 0.01",
        ),
        (MINIMAL + "[training]\nlr = -1\n", "[training] lr: expected a positive number, got -1"),
        (MINIMAL + "[training]\nlr = nan\n", "[training] lr: expected a positive number, got nan"),
        (
            MINIMAL + '[training]\nlr = "fast"\n',
            '[training] lr: expected a positive number, got "fast"',
        ),
        (
            MINIMAL + "[continuum]\ntolerance = 0\n",
            "[continuum] tolerance: expected a positive number, got 0",
        ),
        (MINIMAL + "[training]\nbatch = 5\n", "[training] batch: 5 exceeds [data] samples = 4"),
        (
            MINIMAL + "[data]\ninput = \"__import__('os')\"\n",
            "[data] input: invalid formula: unknown name '__import__' at column 1",
        ),
        (
            MINIMAL + '[data]\ninput = "y.real"\n',
            "[data] input: invalid formula: unexpected character '.'",
        ),
        (MINIMAL + '[data]\ntarget = "y"\n', "[data] target: invalid formula: unknown name 'y'"),
        (MINIMAL + "[data]\ninput = 3\n", "[data] input: expected a formula in quotes, got 3"),
        (
            '[network]\nwidths = [9, 10]\n[coordinates]\nlayout = "grid"\n',
            "[coordinates] layout: grid layer 1 needs a square width (n*n neurons), "
            "but [network] widths[1] = 10",
        ),
        (
            '[network]\nwidths = [9, 4]\n[coordinates]\nlayout = "grid"\n',
            "[data] input: invalid formula (the default \"sin(pi*(l+1)*y)\"): unknown name 'y'",
        ),
        (
            MINIMAL + '[coordinates]\nweights = "unit-cell"\n',
            '[coordinates] weights: "unit-cell" requires every layer to be banded, '
            'but [network] connectivity is "dense" for weight layer 0',
        ),
        (
            '[network]\nwidths = [4, 1]\n[coordinates]\nplacement = "vertex"\n',
            "vertex placement needs at least 2 neurons per layer",
        ),
        (MINIMAL + '[data]\nkind = "file"\n', '[data] path: required when kind = "file"'),
        (
            MINIMAL + '[data]\nkind = "file"\npath = "x.csv"\n',
            "[data] path: expected a .npz, .h5 or .hdf5 file",
        ),
        (MINIMAL + '[data]\npath = "x.npz"\n', '[data] path: only used when kind = "file"'),
        (
            MINIMAL + "[continuum]\ndegree = 25\n",
            "[continuum] degree: expected one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, "
            "15, 16, 17, 18, 19, 20, 21, 22, 23, 24, got 25",
        ),
        (
            MINIMAL + "[continuum]\ntheta = 1.5\n",
            "[continuum] theta: expected a number in [0, 1], got 1.5",
        ),
        (
            MINIMAL + '[output]\nfields = ["w", "w"]\n',
            "[output] fields: expected a list of distinct names",
        ),
        (
            MINIMAL + '[experiment]\nname = "my run"\n',
            "[experiment] name: expected letters, digits",
        ),
        (MINIMAL + "[[output]]\nevery = 1\n", "[output] must be a table"),
        ('name = "x"\n' + MINIMAL, "unknown top-level key 'name'"),
        ("[network\nwidths = [3, 3]\n", "<string>: TOML syntax error: Expected ']'"),
    ],
)
def test_malformed_configs_name_section_key_and_problem(text, message):
    assert message in config_error(text)


def test_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[network]\nwidths = [3, 3\n")
    with pytest.raises(ConfigError, match=r"config\.toml: TOML syntax error: "):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.toml")


def test_the_former_spelling_of_the_momentum_scheme_is_read_as_it():
    """``[training] scheme`` (the momentum rule's scheme) is now ``momentum_scheme``, apart from
    ``[continuum] scheme`` (the continuum's time scheme); files with the former key still load."""
    base = '[network]\nwidths = [4, 4]\n[training]\nrule = "momentum"\ngamma = 1.0\n'
    old = parse_config(base + 'scheme = "rk4"\n')
    assert old.training.momentum_scheme == "rk4"
    assert old == parse_config(base + 'momentum_scheme = "rk4"\n')
    assert "momentum_scheme" in old.text and "\nscheme" not in old.text.split("[continuum]")[0]
    with pytest.raises(ConfigError, match="former spelling of 'momentum_scheme'"):
        parse_config(base + 'scheme = "rk4"\nmomentum_scheme = "rk4"\n')


# --------------------------------------------------------------------------- unread keys

UNREAD = [
    ("training", "gamma", "5.0", '[training] rule = "momentum", but [training] rule = "flow"'),
    ("training", "batch", "2", 'with sampling = "replacement", but [training] rule = "flow"'),
    ("training", "momentum_form", '"exp"', '[training] rule = "momentum", but'),
    ("training", "momentum_scheme", '"rk4"', '[training] rule = "momentum", but'),
    ("init", "scale", "0.5", '[init] kind = "random", but [init] kind = "expression"'),
    ("init", "seed", "3", '[init] kind = "random", but [init] kind = "expression"'),
    ("data", "stiffness", "3.0", '[data] kind = "probes", but [data] kind = "expression"'),
    ("data", "mass", "3.0", '[data] kind = "probes", but [data] kind = "expression"'),
    ("coordinates", "seed", "4", '[coordinates] placement = "random", but'),
    ("network", "quadratic", "[1.0, 2.0, 3.0]", '[network] activation = "quadratic", but'),
    ("network", "offsets", "[0, 3]", '[network] connectivity = "banded", but'),
    ("network", "ends", '"open"', '[network] connectivity = "banded", but'),
]
"""Keys given where the default perceptron does not read them: before, each was accepted and
the run went on without it."""


@pytest.mark.parametrize(("section", "key", "value", "reason"), UNREAD)
def test_a_key_the_run_would_not_read_is_refused_naming_what_reads_it(section, key, value, reason):
    message = config_error(
        DEFAULT_TOML.replace(f"[{section}]\n", f"[{section}]\n{key} = {value}\n")
    )
    assert f"[{section}] {key}: {value} is only read with " in message and reason in message
    default = {"training": ("gamma", "0.0"), "init": ("seed", "0"), "data": ("mass", "0.0")}
    if section in default:  # the default is accepted anywhere: resolved texts write every key
        name, zero = default[section]
        text = DEFAULT_TOML.replace(f"[{section}]\n", f"[{section}]\n{name} = {zero}\n")
        assert parse_config(text).text == default_config().text


def test_probe_keys_and_the_data_formulas_are_refused_where_the_data_do_not_read_them():
    probes = (EXAMPLES / "goldstein.toml").read_text()
    for key, value in (("noise", "0.5"), ("input", '"y*l"'), ("target", '"x"'), ("samples", "7")):
        message = config_error(
            probes.replace('kind = "probes"', f'kind = "probes"\n{key} = {value}')
        )
        assert f"[data] {key}: {value} is only read with [data] kind = " in message, message


def test_random_initial_fields_of_no_size_are_refused():
    text = DEFAULT_TOML.replace("[init]\n", '[init]\nkind = "random"\n')
    assert '[init] scale: kind = "random" adds noise of size scale, but scale = 0' in config_error(
        text
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "theta = 0.7",
            "[continuum] theta = 0.7: the galerkin fields with scheme 'matched' do not",
        ),
        ('scheme = "theta"\ntolerance = 1e-3', "[continuum] tolerance = 0.001: the perceptron"),
        (
            'scheme = "theta"\ninput_layer = "data-span"',
            "[continuum] input_layer = 'data-span': the perceptron fields with scheme 'theta'",
        ),
        ('quadrature = "nodal"\nquadrature_tolerance = 1e-4', "[continuum] quadrature_tolerance:"),
    ],
)
def test_continuum_keys_the_solver_would_not_read_are_refused(change, message):
    from continuum import parse_config as resolved

    text = DEFAULT_TOML.split("[continuum]")[0] + f"[continuum]\n{change}\n"
    with pytest.raises(ConfigError) as info:
        resolved(text)
    assert message in str(info.value), str(info.value)


def test_theta_is_refused_where_the_implicit_scheme_steps_momentum():
    """The implicit scheme's θ-method is the flow's; momentum takes the implicit midpoint rule
    whatever ``theta`` says (before: ``theta = 1`` was accepted and not used)."""
    from continuum import parse_config as resolved

    text = DEFAULT_TOML.split("[continuum]")[0] + '[continuum]\nscheme = "implicit"\ntheta = 1.0\n'
    assert resolved(text).continuum.theta == 1.0
    with pytest.raises(ConfigError) as info:
        resolved(text.replace('rule = "flow"', 'rule = "momentum"'))
    assert (
        "[continuum] theta = 1.0: the galerkin fields with scheme 'implicit' do not read it with "
        "[training] rule = 'momentum'" in str(info.value)
    ), str(info.value)


def test_a_bias_formula_beside_a_network_without_bias_is_refused():
    """The network without bias has none; the row-decoupled perceptron solver froze its bias
    at the formula instead (before: ‖w − w_h‖ = 0.0296 at t = 1, against 6.5e-5 for the
    Galerkin fields of the same run)."""
    text = DEFAULT_TOML.replace("bias = true", "bias = false")
    assert 'bias = "0.1*x"' in text
    message = config_error(text)
    assert '[init] bias: "0.1*x" is only read with [network] bias = true, but' in message
    assert parse_config(text.replace('bias = "0.1*x"', 'bias = "0"')).network.bias is False
