"""The field theory of SGD fluctuations of a linear layer: mean field and covariance ``Q``.

docs/physics.md "SGD fluctuations".  For one linear layer trained by SGD with
i.i.d. batches (``[continuum] fluctuations = "moments"``) the fields stay in the span of the
data at every point ``x`` of the output domain,

    w(t, x, y) = w(0, x, y) + η Σ_l a_l(t, x) X^l(y),      b(t, x) = b(0, x) + η Σ_l a_l(t, x),

and the pair ``(a(x), r(x))``, with the residuals ``r_l(x) = z^l(x) − Y^l(x)``, follows the
linear recursion of :mod:`discrete.fluctuations` with the continuum Gram matrix

    G_kl = η (∫ X^k(y) X^l(y) dy + 1),       r_l(0, x) = ∫ w(0, x, y) X^l(y) dy + b(0, x) − Y^l(x)

(the ``1`` only with bias), one random batch matrix shared by every ``x``.  The law is
therefore carried by the ``L``-dimensional propagator's mean and centred second moments
(:class:`~discrete.fluctuations.SpanLaw`, stepped exactly with the training ``dt``, whose
``dt → 0`` limit is ``dQ/dt = −(ηHQ + QηH) + η²(h/B)Σ``), and the covariance field is
factored through the data,

    Q(x, y; x', y') = η² Σ_kl X^k(y) Cov(a_k(x), a_l(x')) X^l(y'),
    Cov(a(x), a(x')) = Σ_ab r_a(0, x) r_b(0, x') T(E_ab),

so ``Var w(x, y)`` costs ``O(L²)`` per point and nothing of size ``N⁴`` (nor ``N²``) is formed.
With ``fluctuations = "sde"`` the same layer follows one seeded path of the stochastic
modified equation (:mod:`continuum.fields.sme`) instead.  The integrals over ``y`` use the Gauss
rule refined to rounding error (:func:`continuum.fields.dataspan.converged_rule`); in ``x`` the
fields are exact pointwise.  The model is replicated on every rank (its cost is independent
of the width).
"""

from __future__ import annotations

import numpy as np

from continuum.fields.dataspan import converged_rule
from continuum.fields.equilibrium import equilibrium
from continuum.fields.sme import SME, Scheme
from continuum.io import layout
from discrete.experiment import DiscreteSetup
from discrete.expressions import Expression
from discrete.fluctuations import SpanLaw, require_linear_layer

Array = np.ndarray

PROPAGATOR_MEAN = layout.fluctuation("propagator_mean")
"""The SGD law's state: the mean propagator ``Ξ̄`` (``(2L, L)`` per output step)."""
PROPAGATOR_SECOND = layout.fluctuation("propagator_second")
"""The SGD law's state: the centred second moments ``T`` (``(L, L, 2L, 2L)``)."""
PROPAGATOR = layout.fluctuation("propagator")
"""One path of the SME: its propagator ``Ξ`` (``(2L, L)``)."""


def _variables(arrangement: str, prefix: str, points: Array) -> dict[str, Array]:
    names = [prefix] if arrangement == "line" else [f"{prefix}1", f"{prefix}2"]
    return {name: points[:, k] for k, name in enumerate(names)}


class SpanLayer:
    """The continuum layer in the span of the data: Gram matrix, initial residuals ``r(0, x_i)``
    at the output lattice, and the map from propagator moments to fields at the lattice."""

    def __init__(self, setup: DiscreteSetup):
        require_linear_layer(setup)
        cfg, conv = setup.config, setup.convention
        if setup.dictionary.metric != "continuum":
            raise ValueError(
                f"[continuum] fluctuations = {cfg.continuum.fluctuations!r} needs [training] "
                "metric = 'continuum' (one rate η for weights and biases)"
            )
        self.setup = setup
        self.lr = setup.dictionary.lr
        self.bias = setup.network.bias
        inputs, outputs = conv.layers
        self.samples = setup.data.samples
        every = np.arange(self.samples)
        x = outputs.points
        data = cfg.data

        def input_values(y: Array) -> Array:  # (n_y, L)
            v = _variables(inputs.layout, "y", y)
            out = data.input(l=every[None, :], **{k: a[:, None] for k, a in v.items()})
            return np.broadcast_to(out, (len(y), self.samples))

        weight, bias = cfg.init.weight, cfg.init.bias
        assert isinstance(weight, Expression) and isinstance(bias, Expression)  # one layer

        def weight0(y: Array) -> Array:  # (n_x, n_y)
            vx = {k: a[:, None] for k, a in _variables(outputs.layout, "x", x).items()}
            vy = {k: a[None, :] for k, a in _variables(inputs.layout, "y", y).items()}
            return np.broadcast_to(weight(m=0, **vx, **vy), (len(x), len(y)))

        def integrals(y: Array, w: Array) -> Array:
            basis = w[:, None] * input_values(y)
            return np.vstack([input_values(y).T @ basis, weight0(y) @ basis])

        _, _, values = converged_rule(inputs.dim, integrals)
        gram, moments = values[: self.samples], values[self.samples :]
        vx = _variables(outputs.layout, "x", x)
        b0 = np.zeros(len(x))
        if self.bias:
            b0 = np.broadcast_to(bias(m=0, **vx), (len(x),)).copy()
        target = data.target(l=every[None, :], **{k: a[:, None] for k, a in vx.items()})
        self.r0 = moments + b0[:, None] - np.broadcast_to(target, moments.shape)
        self.gram = self.lr * (gram + (1.0 if self.bias else 0.0))
        self.X = input_values(inputs.points)  # X^l(y_j), (N_in, L)
        self.w0 = weight0(inputs.points)
        self.b0 = b0

    def static(self) -> dict[str, Array]:
        """What ``fields.h5`` records of the layer: the Gram matrix and ``r(0, x_i)``."""
        return {
            layout.fluctuation("gram"): self.gram,
            layout.fluctuation("initial_residuals"): self.r0,
        }

    def fields(self, propagator: Array) -> tuple[Array, Array]:
        """``w(x_i, y_j)``, ``b(x_i)`` for a propagator (or its mean) ``Ξ`` (``(2L, L)``)."""
        a = self.r0 @ propagator[: self.samples].T
        w = self.w0 + self.lr * a @ self.X.T
        return w, self.b0 + (self.lr * a.sum(axis=1) if self.bias else 0.0)

    def variances(self, second: Array) -> tuple[Array, Array]:
        """``Var w(x_i, y_j) = η² X(y_j)ᵀ Cov(a(x_i)) X(y_j)`` and ``Var b(x_i) = η² 1ᵀ Cov 1``
        from the centred second moments ``T`` (``(L, L, 2L, 2L)``)."""
        L = self.samples
        cov = np.einsum("ia,ib,abpq->ipq", self.r0, self.r0, second[:, :, :L, :L])
        var_w = self.lr**2 * np.einsum("jk,ikl,jl->ij", self.X, cov, self.X)
        var_b = self.lr**2 * cov.sum(axis=(1, 2)) if self.bias else np.zeros(len(cov))
        return var_w, var_b

    def cost(self, propagator: Array) -> float:
        """``(1/L) Σ_l ½ Σ_i Δx_i r_l(x_i)²`` of the fields of ``Ξ``, on the output lattice."""
        r = self.r0 @ propagator[self.samples :].T
        dx = self.setup.convention.layers[1].measure
        return 0.5 * float(np.sum(dx[:, None] * r**2)) / self.samples


class MomentsModel:
    """``[continuum] fluctuations = "moments"``: mean field and variance field of SGD."""

    def __init__(self, setup: DiscreteSetup):
        self.layer = SpanLayer(setup)
        self.law = SpanLaw(self.layer.gram, setup.dt, setup.config.training.batch)
        self.steps = 0

    @property
    def t(self) -> float:
        return self.steps * self.law.h

    def advance_to(self, t: float) -> None:
        while self.t < t - 1e-9 * self.law.h:
            self.law.step()
            self.steps += 1

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        """The mean fields ``E[w](x_i, y_j)``, ``E[b](x_i)``."""
        w, b = self.layer.fields(self.law.mean)
        return [w], [b]

    def variance_fields(self) -> tuple[Array, Array]:
        return self.layer.variances(self.law.second)

    def layer_variances(self) -> tuple[list[Array], list[Array]]:
        """:meth:`variance_fields` as one entry per layer (the one layer)."""
        var_w, var_b = self.variance_fields()
        return [var_w], [var_b]

    def cost(self) -> float:
        """The cost of the mean field (on the output lattice)."""
        return self.layer.cost(self.law.mean)

    def series(self) -> dict[str, tuple[int, ...]]:
        n_out, n_in = self.layer.w0.shape
        L = self.layer.samples
        return {
            layout.lattice_variance("layer0", "w"): (n_out, n_in),
            layout.lattice_variance("layer0", "b"): (n_out,),
            PROPAGATOR_MEAN: (2 * L, L),
            PROPAGATOR_SECOND: (L, L, 2 * L, 2 * L),
        }

    def rows(self) -> dict[str, Array]:
        var_w, var_b = self.variance_fields()
        return {
            layout.lattice_variance("layer0", "w"): var_w,
            layout.lattice_variance("layer0", "b"): var_b,
            PROPAGATOR_MEAN: self.law.mean,
            PROPAGATOR_SECOND: self.law.second,
        }

    def summary(self) -> dict:
        """The equilibrium in numbers (for the run's printout and ``summary.json``)."""
        eq = equilibrium(self.layer, self.law.h, self.law.batch)
        dx = self.layer.setup.convention.layers[1].measure
        dy = self.layer.setup.convention.layers[0].measure
        var_w, _ = self.variance_fields()
        return {
            "relaxation_times": [float(t) for t in eq.relaxation_times],
            "mode_temperatures": [float(t) for t in dx @ eq.temperatures],
            "layer_temperature": eq.layer_temperature,
            "total_variance_w": float(np.sum(dx[:, None] * dy[None, :] * var_w)),
            "total_variance_w_equilibrium": float(np.sum(dx[:, None] * dy[None, :] * eq.w_var)),
        }

    def static(self) -> dict[str, Array]:
        """The data span and the Lyapunov equilibrium (:mod:`continuum.fields.equilibrium`)."""
        eq = equilibrium(self.layer, self.law.h, self.law.batch)
        return {
            **self.layer.static(),
            layout.equilibrium("w_var_at_lattice"): eq.w_var,
            layout.equilibrium("b_var_at_lattice"): eq.b_var,
            layout.equilibrium("minimum_residuals"): eq.minimum,
            layout.equilibrium("relaxation_times"): eq.relaxation_times,
            layout.equilibrium("temperatures"): eq.temperatures,
            layout.equilibrium("layer_temperature"): np.asarray(eq.layer_temperature, dtype=float),
        }

    def read_state(self, h5, index: int) -> dict[str, Array]:
        return {name: np.array(h5[name][index]) for name in self.series()}

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        self.law.mean = arrays[PROPAGATOR_MEAN]
        self.law.second = arrays[PROPAGATOR_SECOND]
        self.steps = step


class PathModel:
    """``[continuum] fluctuations = "sde"``: one path of the SME with ``sde_scheme``, step
    ``[continuum] dt`` (default the training dt); the increments of step ``k`` are drawn from
    ``numpy.random.default_rng([seed, 1, k])`` (``[training] seed``), so a path does not
    depend on where a run was resumed or on the number of ranks."""

    def __init__(self, setup: DiscreteSetup):
        cfg = setup.config
        self.layer = SpanLayer(setup)
        self.sme = SME(self.layer.gram, setup.dt, cfg.training.batch)
        dt = cfg.continuum.dt or setup.dt
        assert cfg.continuum.sde_scheme is not None  # set for fluctuations = "sde"
        self.scheme = Scheme(self.sme, cfg.continuum.sde_scheme, dt)
        self.seed = cfg.training.seed
        self.propagator = self.sme.start()
        self.steps = 0

    @property
    def t(self) -> float:
        return self.steps * self.scheme.dt

    def advance_to(self, t: float) -> None:
        while self.t < t - 1e-9 * self.scheme.dt:
            rng = np.random.default_rng([self.seed, 1, self.steps])
            dW, V = self.scheme.increments(rng, ())
            self.propagator = self.scheme.matrices(dW, V) @ self.propagator
            self.steps += 1

    def lattice_fields(self) -> tuple[list[Array], list[Array]]:
        w, b = self.layer.fields(self.propagator)
        return [w], [b]

    def cost(self) -> float:
        return self.layer.cost(self.propagator)

    def series(self) -> dict[str, tuple[int, ...]]:
        L = self.layer.samples
        return {PROPAGATOR: (2 * L, L)}

    def rows(self) -> dict[str, Array]:
        return {PROPAGATOR: self.propagator}

    def static(self) -> dict[str, Array]:
        return self.layer.static()

    def read_state(self, h5, index: int) -> dict[str, Array]:
        return {name: np.array(h5[name][index]) for name in self.series()}

    def set_state(self, arrays: dict[str, Array], step: int) -> None:
        self.propagator = arrays[PROPAGATOR]
        self.steps = round(step * self.layer.setup.dt / self.scheme.dt)
