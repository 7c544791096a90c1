"""The linear-noise approximation of SGD in the continuum: mean fields and factored covariance.

docs/physics.md "SGD fluctuations" ("The linear-noise approximation, factored").
``[continuum] fluctuations = "moments"`` for a network without a closed law (a nonlinear or
deep one; scheme ``lna``): the mean fields follow the full-batch rule of the Galerkin fields
(:mod:`continuum.fields.galerkin`; gradient descent for ``sgd``, the heavy ball for ``momentum``),
and the covariance of their fluctuations,

    Q = F Fᵀ,     δw^(m)(x, y) = Σ_k φ(x)ᵀ F_k^(m) ψ(y) ζ_k    (ζ_k independent, unit variance),

follows the linearised step with the noise of the ``L`` per-sample functional derivatives
``δℓ_l/δw − δC/δw`` (:class:`discrete.linear_noise.FactoredLinearNoise`): the Jacobian of
the force is applied to the columns of ``F`` and nothing of size ``N⁴`` (or ``P²``) is formed.
``Var w^(m)(x_i, y_j) = Σ_k (E_x F_k^(m) E_yᵀ)_ij²`` at the lattice.  Temperatures per layer
(summed over the layer's modes): ``T_pot,m = ⟨δw_m · (H δw)_m⟩`` and, for the heavy ball,
``T_kin,m = ⟨ρ ‖δẇ_m‖²_{L²}⟩`` with ``ρ = 1/η`` (the mass ``M_{m+1} ⊗ M_m`` of the FE
coefficients).  The model is replicated on every rank (its Galerkin fields live on
``COMM_SELF``), so 1 and 2 ranks give the same numbers; it is deterministic, so a resumed run
replays it from ``t = 0`` to the resumed step instead of storing the factor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mpi4py import MPI

from continuum.io import layout
from continuum.models.limit import GalerkinFields, GalerkinModel
from discrete.experiment import DiscreteSetup
from discrete.linear_noise import FactoredLinearNoise, layer_group
from discrete.training import GradientDescent, Rule, State

Array = np.ndarray


def _full_batch(galerkin: GalerkinFields, setup: DiscreteSetup) -> Rule:
    """The rule of the Galerkin model's own state (only its lattice evaluation is used)."""
    return GradientDescent(galerkin, galerkin.per_group(setup.dictionary.continuum_rates()), 1.0)


class LinearNoiseModel:
    """``fluctuations = "moments"``, scheme ``lna``: SGD or momentum SGD with i.i.d. batches
    of a dense network, in the linear-noise approximation around the full-batch mean."""

    def __init__(self, setup: DiscreteSetup, comm: MPI.Comm):
        self.setup = setup
        self.fields = GalerkinModel(setup, MPI.COMM_SELF, _full_batch)
        self.galerkin = g = self.fields.galerkin
        self.depth = setup.network.depth
        self.groups = [layer_group(*g.layer_slices(m)) for m in range(self.depth)]
        tr = setup.config.training
        self._law_args: dict[str, Any] = dict(  # FactoredLinearNoise's, kept for a replay
            cost=g,
            rates=g.per_group(setup.dictionary.continuum_rates()),
            h=setup.dt,
            batch=tr.batch,
            samples=setup.data.samples,
            theta0=self.fields.state.theta,
            groups=self.groups,
            mass=self.mass,
            momentum=(tr.gamma, tr.momentum_form) if tr.rule == "momentum" else None,
        )
        self.law = FactoredLinearNoise(**self._law_args)
        self._sync()

    def mass(self, block: Array) -> Array:
        """``M`` on columns of coefficient vectors: ``M_{m+1} W M_m`` and ``M_{m+1} b``."""
        g, out = self.galerkin, np.empty_like(block)
        k = block.shape[1]
        for m, (n_out, n_in) in enumerate(g.shapes):
            mx, my = g.spaces[m + 1].mass, g.spaces[m].mass
            weights, biases = g.layer_slices(m)
            W = block[weights].reshape(n_out, n_in, k)
            left = np.asarray(mx @ W.reshape(n_out, n_in * k)).reshape(n_out, n_in, k)
            both = np.asarray(my @ left.transpose(1, 0, 2).reshape(n_in, n_out * k))
            out[weights] = both.reshape(n_in, n_out, k).transpose(1, 0, 2).reshape(n_out * n_in, k)
            if self.setup.network.bias:
                out[biases] = np.asarray(mx @ block[biases])
        return out

    def _sync(self) -> None:
        """The Galerkin model's state is the law's mean (for the lattice evaluation)."""
        self.fields.state = State(self.law.t, self.law.steps, self.law.theta)

    @property
    def t(self) -> float:
        return self.law.t

    def advance_to(self, t: float) -> None:
        while self.law.t < t - 1e-9 * self.law.h:
            self.law.step()
        self._sync()

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        """The mean fields at the run's lattice."""
        return self.fields.lattice_fields()

    def evaluate_lattice(self, convention) -> tuple[list[Array], list[Array]]:
        return self.fields.evaluate_lattice(convention)

    def cost(self) -> float:
        return self.fields.cost()

    def layer_variances(self, convention=None) -> tuple[list[Array], list[Array]]:
        """``Var w^(m)(x_i, y_j)`` and ``Var b^(m)(x_i)`` at the lattice of ``convention``
        (default the run's own), every layer."""
        evaluators = self.fields.lattice_evaluators(convention)
        g, F = self.galerkin, self.law.theta_factor
        k = F.shape[1]
        var_w, var_b = [], []
        for m, (n_out, n_in) in enumerate(g.shapes):
            Ex, Ey = evaluators[m + 1], evaluators[m]
            nx, ny = Ex.shape[0], Ey.shape[0]
            weights, biases = g.layer_slices(m)
            W = F[weights].reshape(n_out, n_in, k)
            left = np.asarray(Ex @ W.reshape(n_out, n_in * k)).reshape(nx, n_in, k)
            values = np.asarray(Ey @ left.transpose(1, 0, 2).reshape(n_in, nx * k))
            values = values.reshape(ny, nx, k)
            var_w.append(np.einsum("jik,jik->ij", values, values))
            b = np.asarray(Ex @ F[biases]) if self.setup.network.bias else np.zeros((nx, 0))
            var_b.append(np.einsum("ik,ik->i", b, b))
        return var_w, var_b

    def temperatures(self) -> dict[str, list[float]]:
        """Per layer ``T_pot,m`` and (heavy ball) ``T_kin,m``, summed over the layer's modes."""
        out = {"temperature_potential": [float(t) for t in self.law.potential_temperatures()]}
        if self.law.momentum:
            out["temperature_kinetic"] = [float(t) for t in self.law.kinetic_temperatures()]
        return out

    def summary(self) -> dict:
        """Per layer: ``∫∫ Var w dx dy`` (lattice rule), the temperatures; the factor's rank."""
        conv = self.setup.convention
        var_w, _ = self.layer_variances()
        total = [
            float(np.sum(conv.layers[m + 1].measure[:, None] * conv.layers[m].measure * v))
            for m, v in enumerate(var_w)
        ]
        return {"total_variance_w": total, **self.temperatures(), "rank": self.law.rank}

    def series(self) -> dict[str, tuple[int, ...]]:
        conv = self.setup.convention
        out: dict[str, tuple[int, ...]] = {}
        for m in range(self.depth):
            n_out, n_in = conv.layers[m + 1].size, conv.layers[m].size
            out[layout.lattice_variance(f"layer{m}", "w")] = (n_out, n_in)
            out[layout.lattice_variance(f"layer{m}", "b")] = (n_out,)
        out[layout.fluctuation("temperature_potential")] = (self.depth,)
        if self.law.momentum:
            out[layout.fluctuation("temperature_kinetic")] = (self.depth,)
        out[layout.fluctuation("rank")] = ()
        return out

    def rows(self) -> dict[str, Array]:
        var_w, var_b = self.layer_variances()
        out: dict[str, Array] = {}
        for m in range(self.depth):
            out[layout.lattice_variance(f"layer{m}", "w")] = var_w[m]
            out[layout.lattice_variance(f"layer{m}", "b")] = var_b[m]
        for name, values in self.temperatures().items():
            out[layout.fluctuation(name)] = np.array(values)
        out[layout.fluctuation("rank")] = np.asarray(self.law.rank, dtype=np.int64)
        return out

    def static(self) -> dict[str, Array]:
        return self.fields.static()

    def read_state(self, h5, index: int) -> dict[str, Array]:
        """Nothing: the law is deterministic and replayed by :meth:`set_state`."""
        return {}

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        """The law at training step ``step``, recomputed from ``t = 0``."""
        self.law = FactoredLinearNoise(**self._law_args)
        for _ in range(step):
            self.law.step()
        self._sync()
