"""The continuum of index layers (docs/physics.md "Index layers"): a multiplet w_j(x), hidden
product fields, a readout v_k(y), reached by networks of growing width at order 2 (cell placement),
and the continuum itself converging at its mesh order.

Data: small standardized subsets of two bundled sets, softmax cross-entropy; the full-batch
flow (RK4) and SGD (batches of the same seeded schedule for the network and the continuum).
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from continuum.app.convergence import convergence_study, with_degree, with_width
from continuum.app.run import field_errors
from continuum.fem.spaces import IndexSpace
from continuum.models.limit import continuum_model
from discrete.experiment import build
from discrete.training import integrate
from tests.configs import load


def test_index_space_is_the_counting_measure():
    space = IndexSpace.of_size(5)
    f = np.arange(10.0).reshape(5, 2)
    np.testing.assert_array_equal(space.load(f), f)
    np.testing.assert_array_equal(space.integrate(f), f.sum(axis=0))
    np.testing.assert_array_equal(space.mass.toarray(), np.eye(5))
    E = space.evaluation_matrix(np.array([[3.0], [0.0]]))
    np.testing.assert_array_equal(E @ f, f[[3, 0]])
    with pytest.raises(ValueError, match="not in this index set"):
        space.evaluation_matrix(np.array([[0.5]]))


@pytest.mark.parametrize("base", ["iris", "wine"], ids=["iris-2", "wine-3"])
@pytest.mark.parametrize("rule", ["flow", "sgd"])
def test_width_order_two_of_index_field_index_networks(base, rule):
    """Observed over N = 16, 32, 64 (measured: errors 3.0e-4, 7.1e-5, 1.8e-5, fitted 2.04 for
    iris; 4.9e-4, 1.2e-4, 3.0e-5, fitted 2.005 for wine; flow and SGD alike)."""
    r = convergence_study(load(base, training={"rule": rule}), [16, 32, 64], [2])
    fit = r["degrees"]["2"]["fitted_order"]
    assert 1.8 <= fit <= 2.2, r


def continuum_error(config, cells: int, reference, lattice) -> float:
    cfg = dataclasses.replace(config, continuum=dataclasses.replace(config.continuum, cells=cells))
    model = continuum_model(build(with_width(cfg, 16)), MPI.COMM_SELF)
    model.advance_to(cfg.training.steps * cfg.training.dt)
    w, b = model.evaluate_lattice(lattice.convention)
    return float(np.hypot(*field_errors(lattice.network, lattice.convention, w, b, *reference)))


@pytest.mark.parametrize(
    ("degree", "cells", "expected"), [(1, (16, 32, 64), 2), (2, (8, 16, 32), 3)]
)
def test_continuum_of_index_layers_converges_at_its_mesh_order(degree, cells, expected):
    """Errors of the fields at t = 1 against a fine mesh (P1: 512 cells, P2: 256), in the
    lattice L2 norm of a fine lattice (N = 256): order p + 1 (measured: P1 3.5e-2, 8.6e-3,
    2.1e-3, order 2.02; P2 1.5e-2, 1.7e-3, 2.8e-4, order 2.89)."""
    config = with_degree(load("iris"), degree)
    lattice = build(with_width(config, 256))
    fine = dataclasses.replace(
        config, continuum=dataclasses.replace(config.continuum, cells=512 // degree)
    )
    model = continuum_model(build(with_width(fine, 16)), MPI.COMM_SELF)
    model.advance_to(config.training.steps * config.training.dt)
    reference = model.evaluate_lattice(lattice.convention)
    errors = [continuum_error(config, n, reference, lattice) for n in cells]
    order = -np.polyfit(np.log(cells), np.log(errors), 1)[0]
    assert abs(order - expected) <= 0.25, errors


@pytest.mark.mpi
@pytest.mark.parametrize("base", ["iris", "wine"], ids=["iris-2", "wine-3"])
@pytest.mark.parametrize("rule", ["flow", "sgd"])
@pytest.mark.parametrize("distribute", ["rows", "samples"])
def test_two_ranks_give_the_index_fields_of_one_rank(base, rule, distribute):
    """Rows of every weight block (the 3 classes, the multiplet's hidden rows), or the samples
    of every batch, split over two ranks: every array of fields.h5 equal to one rank's to
    1e-10."""
    import tempfile

    import h5py

    from continuum.app.run import run_experiment

    comm = MPI.COMM_WORLD
    assert comm.size == 2, "run this test under mpiexec -n 2"
    tmp = Path(comm.bcast(tempfile.mkdtemp(prefix="synfield-mpi-") if comm.rank == 0 else None))
    training = {"rule": rule, "batch": 8} if rule == "sgd" else {"rule": rule}
    config = load(base, training=training, continuum={"distribute": distribute})
    run_experiment(config, tmp / "two", comm, quiet=True)
    if comm.rank == 0:
        run_experiment(config, tmp / "one", MPI.COMM_SELF, quiet=True)
        with h5py.File(tmp / "one" / "fields.h5") as a, h5py.File(tmp / "two" / "fields.h5") as b:
            names = []
            a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            assert {"diagnostics/accuracy_test", "diagnostics/continuum_accuracy_test"} <= set(
                names
            )
            for name in names:
                if name.startswith("integrity"):  # checksums of bytes, equal values to 1e-10
                    continue
                np.testing.assert_allclose(
                    b[name][()], a[name][()], rtol=0, atol=1e-10, err_msg=name
                )
    comm.Barrier()


def test_continuum_classifier_on_test_rows_is_the_limit_of_the_networks():
    """The continuum's outputs at the held-out rows, ``Z_∞ = Σ_k ∫ v_k h``, are reached by
    the trained networks' outputs at order 2 (N = 32, 64, 128; max over rows and classes)."""
    config = load("iris")
    T = config.training.steps * config.training.dt
    model = continuum_model(build(config), MPI.COMM_SELF)
    model.advance_to(T)
    data = model.setup.data
    Z_inf = model.galerkin.outputs(model.state.theta, data.X_test.T).T
    errors = []
    for N in (32, 64, 128):
        setup = build(with_width(config, N))
        *_, last = integrate(setup.rule, setup.rule.initial(setup.theta0), setup.steps, setup.steps)
        errors.append(np.abs(setup.network.forward(last.theta, data.X_test).output - Z_inf).max())
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    assert np.all(np.abs(orders - 2) <= 0.2), errors
    figures = model.held_out()
    assert figures["accuracy_test"] == np.mean(Z_inf.argmax(axis=1) == data.Y_test.argmax(axis=1))


def test_random_placement_is_a_monte_carlo_quadrature_of_order_one_half():
    """Neurons at i.i.d. uniform labels (seeded), the same smooth initial fields: the error
        against the continuum, RMS over an ensemble of 32 seeds at N = 16, 64, 256, falls at
        order ½ (measured: 2.8e-2, 1.4e-2, 7.0e-3, order 0.49), where cell placement falls at
    order 2 (2.04 over N = 16, 32, 64)."""
    from continuum.app.convergence import width_error

    config = load("iris")
    model = continuum_model(build(config), MPI.COMM_SELF)
    model.advance_to(config.training.steps * config.training.dt)
    widths = np.array([16, 64, 256])

    def placed(placement: str, seed: int):
        coordinates = dataclasses.replace(config.coordinates, placement=placement, seed=seed)
        return dataclasses.replace(config, coordinates=coordinates)

    rms = [
        np.sqrt(np.mean([width_error(placed("random", s), N, model) ** 2 for s in range(32)]))
        for N in widths
    ]
    cell_widths = np.array([16, 32, 64])  # beyond, the continuum's own error shows
    cell = [width_error(placed("cell", 0), N, model) for N in cell_widths]
    random_order = -np.polyfit(np.log(widths), np.log(rms), 1)[0]
    cell_order = -np.polyfit(np.log(cell_widths), np.log(cell), 1)[0]
    assert abs(random_order - 0.5) <= 0.15, rms
    assert abs(cell_order - 2.0) <= 0.2, cell
    # two seeds place the neurons differently; one seed twice, identically
    a, b = build(placed("random", 1)), build(placed("random", 2))
    assert not np.array_equal(a.convention.layers[1].points, b.convention.layers[1].points)
    np.testing.assert_array_equal(
        a.convention.layers[1].points, build(placed("random", 1)).convention.layers[1].points
    )
