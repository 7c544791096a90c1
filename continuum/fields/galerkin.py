"""Galerkin semi-discretisation of the field equations of a deep network (docs/physics.md
"Continuum", "Layer kinds in series").

The network is a series of layer kinds (:mod:`continuum.fields.layers`): this module is the
driver that composes them, with the data, the loss, the MPI distribution and the factored
force.  Written out for dense layers, every weight field is a coefficient matrix in
``V_{m+1} ⊗ V_m`` and every bias field a vector in ``V_{m+1}`` (:mod:`continuum.fem.spaces`);
a banded unit-cell layer holds ``S`` fields ``w_s`` in ``V_m = V_{m+1}`` instead
(:mod:`continuum.fields.layers.unitcell`).  For a batch of samples ``l`` the
continuum forward pass, evaluated with FEM quadrature on each coordinate domain, is

    η^(m)_b = ∫ ψ_b(y) h^(m)(y) dy,      h^(0) = X^l,  h^(m) = σ(z^(m)),
    z^(m+1) = W^(m) η^(m) + b^(m)        (coefficients in V_{m+1}),

the cost ``C = (1/L) Σ_l ½ ∫ (Z^l − Y^l)² dx`` (or the softmax cross-entropy on an index
output layer, :mod:`discrete.cost`; its density ``g`` replaces ``Z − Y``) and the backward
fields

    δ^(M) = σ'_out(z^(M)) (Z − Y),      d^(m+1)_a = ∫ φ_a δ^(m+1) dx,
    δ^(m)(y) = σ'(z^(m)(y)) ∫ w^(m)(x, y) δ^(m+1)(x) dx = σ'(z^(m)) (ψ(y)ᵀ W^(m)ᵀ d^(m+1)).

The L2 (Riesz) representatives of the functional derivatives are then of rank ≤ L:

    δC/δw^(m) ↦ (1/L) M_{m+1}⁻¹ D^(m+1) (M_m⁻¹ H^(m))ᵀ,    δC/δb^(m) ↦ (1/L) M_{m+1}⁻¹ D^(m+1) 1,

with ``D`` and ``H`` the ``d`` and ``η`` vectors of all samples as columns.  The input
factor may instead be the span of the data (:mod:`continuum.fields.dataspan`): then ``W^(0)`` holds
the coefficients ``a_l`` of ``w^(0) − w^(0)(0) = Σ_l a_l(x) X^l(y)``.  The object
offers the same ``gradient``/``value`` interface as :class:`discrete.cost.Cost`, so the
discrete training rules (RK4 flow, Euler/SGD, heavy-ball, RK4 momentum) integrate the
continuum equations ``∂_t φ = −η δC/δφ`` and ``∂_t² φ + γ ∂_t φ + η δC/δφ = 0`` with
exactly the time discretisation of the network they are compared with.

MPI (:mod:`continuum.fem.distribution`): the factor spaces are replicated on every rank (they
are 1-D or 2-D and small), and either the rows of every weight matrix — the output factor —
are split over the ranks (``rows``: vectors of length ``n × L``, moments, pre-activations,
back-propagated ``d``, are replicated, so one gradient costs an ``Allgatherv`` of ``z`` and
an ``Allreduce`` of ``Wᵀ d`` per layer: communication ``O(n·L)``, work ``O(n²·L/P)``), or
the samples are (``samples``: θ replicated, each rank the passes of its columns, one
``Allreduce`` of the gradient and the cost: communication ``O(n²)``, work ``O(n²·L/P)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.linalg.blas
from mpi4py import MPI

from continuum.fem.row_partition import RowPartition, sum_over_ranks
from continuum.fem.spaces import FactorSpace, IndexSpace
from continuum.fields.dataspan import DataSpan
from continuum.fields.layers import DenseLayer, Inputs, ShiftFactors, serial
from discrete.cost import Loss, SquaredError
from discrete.network import Network

Array = np.ndarray
DataFunction = Callable[[Array, Array], Array]  # (points (n, d), samples (L,)) -> (n, L)


def hidden(z_q: list[Array | None], m: int) -> Array:
    """The pre-activations ``z^(m)`` of layer ``m ≥ 1`` from a forward pass (``z_q[0]`` is
    the only placeholder)."""
    z = z_q[m]
    assert z is not None
    return z


class ForwardPass(NamedTuple):
    """What :meth:`GalerkinNetwork.forward` computes: the pre-activations ``z`` and the hidden
    activities ``h = σ(z)`` at the quadrature points (index 0 the input's placeholder, ``h``
    of layers 1 … M − 1), and each layer's inputs."""

    z: list[Array | None]
    h: list[Array | None]
    inputs: list[Inputs]


@dataclass
class FactoredForce:
    """The full-batch force ``−η ⊙ δC/δθ`` with every weight block kept as its factors,
    ``F^(m) = A_m B_mᵀ`` (dense: ``A_m = −(η_w/L) M_{m+1}⁻¹ D^(m+1)``, this rank's rows × L;
    ``B_m = M_m⁻¹ H^(m)``, ``n_m × L``; unit-cell: ``A_m = −η_w R``, ``B_m = 1_S``), and the bias
    forces ``−(η_b/L) M⁻¹ D 1`` (replicated)."""

    weights: list[tuple[Array, Array]]
    biases: list[Array]


Shift = tuple[float, FactoredForce]
"""``(s, F)``: the coefficients ``θ + s F``, applied without forming ``F``."""


class CoefficientLayout:
    """Where each layer's weight block (this rank's rows) and bias vector sit in θ."""

    network: Network
    distribution: str
    _shapes: list[tuple[int, int]]

    def _lay_out(self, local_rows: list[int]) -> None:
        """Blocks ``(local_rows[m] × n_in)`` of weights, then the ``n_out`` biases, per layer."""
        self._w, self._b = [], []
        start = 0
        for m, (n_out, n_in) in enumerate(self._shapes):
            self._w.append(slice(start, start + local_rows[m] * n_in))
            start += local_rows[m] * n_in
            nb = n_out if self.network.bias else 0
            self._b.append(slice(start, start + nb))
            start += nb
        self.size = start

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """The full shape of every weight coefficient matrix."""
        return list(self._shapes)

    def layer_slices(self, m: int) -> tuple[slice, slice]:
        """Where layer ``m``'s weight block (row-major) and its biases sit in θ."""
        return self._w[m], self._b[m]

    def per_group(self, values: list[tuple[float, float]]) -> Array:
        """A local coefficient vector equal to ``values[m] = (weights, biases)`` per layer."""
        v = np.zeros(self.size)
        for m, (vw, vb) in enumerate(values):
            v[self._w[m]] = vw
            v[self._b[m]] = vb
        return v

    def layer_rates(self, rates: Array, m: int) -> tuple[float, float]:
        """``(η_w, η_b)`` of layer ``m`` from a vector of per-coefficient rates (``η_b`` is
        ``nan`` without biases)."""
        rb = float(rates[self._b[m]][0]) if self.network.bias else float("nan")
        return float(rates[self._w[m]][0]), rb

    @property
    def shared(self) -> Array:
        """Which entries of this rank's θ every rank of ``comm`` holds alike: the biases when
        the rows are split, every entry when the samples are (a boolean mask of θ)."""
        mask = np.full(self.size, self.distribution == "samples")
        for sb in self._b:
            mask[sb] = True
        return mask

    def b(self, theta: Array, m: int) -> Array:
        """The (replicated) coefficient vector of ``b^(m)`` (zeros without biases)."""
        if not self.network.bias:
            return np.zeros(self._shapes[m][0])
        return theta[self._b[m]]


class GalerkinNetwork(CoefficientLayout):
    """Continuum fields of a feed-forward network: its layer kinds composed in series
    (:mod:`continuum.fields.layers`: dense product fields, banded unit-cell fields).

    ``weights`` is the weight convention of every layer (default ``product``: all dense);
    ``distribution`` (``"rows"`` or ``"samples"``, :mod:`continuum.fem.distribution`) is what
    ``comm`` splits: the rows of every weight block, or the columns of every batch; the
    other one is split over ``MPI.COMM_SELF`` (not at all)."""

    def __init__(
        self,
        network: Network,
        spaces: list[FactorSpace | IndexSpace | DataSpan],
        inputs: DataFunction,
        targets: DataFunction,
        samples: int,
        comm: MPI.Comm = MPI.COMM_SELF,
        loss: Loss | None = None,
        distribution: str = "rows",
        weights: tuple[str, ...] | None = None,
    ):
        if distribution not in ("rows", "samples"):
            raise ValueError(f"distribution must be 'rows' or 'samples', got {distribution!r}")
        self.network = network
        self.spaces = spaces
        self.samples = samples
        self.comm = comm
        self.distribution = distribution
        self._row_comm = comm if distribution == "rows" else MPI.COMM_SELF
        self._sample_comm = comm if distribution == "samples" else MPI.COMM_SELF
        self.loss = loss or SquaredError()
        self.layers = serial(
            network, weights or ("product",) * network.depth, spaces, self._row_comm
        )
        all_samples = np.arange(samples)
        self.X_q = inputs(spaces[0].quadrature_points, all_samples)
        self.Y_q = targets(spaces[-1].quadrature_points, all_samples)
        # the data do not move: what the first layer reads of them (for a dense layer
        # η⁽⁰⁾ = ∫ψ X and its Riesz image M₀⁻¹η⁽⁰⁾) is computed once
        self._data = self.layers[0].data_inputs(self.X_q)
        # an input layer in the span of the data carries its initial field as an offset
        self.span = spaces[0] if isinstance(spaces[0], DataSpan) else None
        self._shapes = [layer.shape for layer in self.layers]
        self.partitions = [layer.partition for layer in self.layers]
        self.row_counts = [p.counts for p in self.partitions]
        self.rows = [p.rows for p in self.partitions]
        self._lay_out([r.stop - r.start for r in self.rows])
        self._linear_output = network.output == "identity" or network.activation.name == "linear"
        affine = network.depth == 1 and self._linear_output and self.loss.name == "mse"
        dense = isinstance(self.layers[0], DenseLayer)
        self._readout = self._linear_readout() if affine and dense else None

    @property
    def eta0(self) -> Array:
        """What the first layer reads of the data (a dense layer: ``η⁽⁰⁾ = ∫ ψ X``)."""
        return self._data.values

    @property
    def riesz0(self) -> Array:
        """The data's part of the first layer's force (a dense layer: ``M₀⁻¹ η⁽⁰⁾``)."""
        assert self._data.image is not None  # data inputs carry their image
        return self._data.image

    def _dense(self, m: int) -> DenseLayer:
        """Layer ``m``, where only a dense layer can be (one-layer readout, tangent)."""
        layer = self.layers[m]
        if not isinstance(layer, DenseLayer):
            raise ValueError(f"weight layer {m} is a {layer.name} layer, not a dense one")
        return layer

    def _linear_readout(self) -> tuple[Array, Array]:
        """For one layer with a linear output, the residual ``r = z + f`` is ``z ∈ V_1`` plus
        the fixed ``f = z_0 − Y`` (``z_0`` the data span's offset, else 0), so its Galerkin
        image is affine in the coefficients:

            M⁻¹ ∫ r φ = z + P_h f,      ∫ r² = ‖z + P_h f‖²_M + ‖(I − P_h) f‖².

        Returns ``P_h f`` (n × L) and ``‖(I − P_h) f^l‖²`` (L,), computed once."""
        space = self.layer_space(1)
        f = -self.Y_q if self.span is None else self.span.initial_moments - self.Y_q
        projected = space.solve_mass(space.load(f))
        rest = f - space.at_quadrature(projected)
        return projected, space.integrate(rest * rest)

    def layer_space(self, m: int) -> FactorSpace | IndexSpace:
        """The space of neuron layer ``m``: every layer's but an input layer in the data span."""
        space = self.spaces[m]
        assert not isinstance(space, DataSpan)
        return space

    @property
    def affine_readout(self) -> bool:
        """One layer with a linear output: the residual is affine in the coefficients."""
        return self._readout is not None

    def W(self, theta: Array, m: int) -> Array:
        """This rank's rows of the coefficient matrix ``W^(m)``."""
        return theta[self._w[m]].reshape(-1, self._shapes[m][1])

    def gather_rows(self, local: Array, m: int) -> Array:
        """All rows of a row-distributed array (``Allgatherv``), on every rank."""
        return self.partitions[m].gather(local)

    def sum_over_ranks(self, a: Array) -> Array:
        """The sum over the ranks that hold parts of the rows (``Allreduce``)."""
        return sum_over_ranks(self._row_comm, a)

    def sum_over_samples(self, a: Array) -> Array:
        """The sum over the ranks that hold parts of the batch (``Allreduce``)."""
        return sum_over_ranks(self._sample_comm, a)

    def gather_samples(self, local: Array) -> Array:
        """All columns of a sample-distributed ``(n, L_local)`` array, in rank order."""
        comm = self._sample_comm
        if comm.size == 1:
            return local
        counts = np.array(comm.allgather(local.shape[1]))
        return RowPartition(comm, counts).gather(local, axis=1)

    def pack(self, w: list[Array], b: list[Array]) -> Array:
        """Local coefficients from full matrices ``w[m]`` (all rows) and vectors ``b[m]``."""
        theta = np.zeros(self.size)
        for m in range(self.network.depth):
            theta[self._w[m]] = w[m][self.rows[m]].ravel()
            if self.network.bias:
                theta[self._b[m]] = b[m]
        return theta

    def unpack(self, theta: Array) -> tuple[list[Array], list[Array]]:
        """Full coefficient matrices and bias vectors (gathered from every rank)."""
        w = [self.gather_rows(self.W(theta, m), m) for m in range(self.network.depth)]
        return w, [self.b(theta, m).copy() for m in range(self.network.depth)]

    def interpolate(
        self, weight: Callable[[int, Array, Array], Array], bias: Callable[[int, Array], Array]
    ) -> Array:
        """Coefficients of the nodal interpolants of ``w^(m)(x, y)`` (of each layer's kind:
        :meth:`continuum.fields.layers.LayerKind.interpolate`) and ``b^(m)(x)``."""
        w, b = [], []
        for m, layer in enumerate(self.layers):
            xs = self.layer_space(m + 1).dof_coordinates
            if m == 0 and self.span is not None:
                w.append(np.zeros(self._shapes[0]))  # w^(0)(0) is the span's offset
            else:
                w.append(layer.interpolate(functools.partial(weight, m)))
            b.append(bias(m, xs))
        return self.pack(w, b)

    @staticmethod
    def _shift(shift: Shift | None, m: int) -> ShiftFactors:
        """Layer ``m``'s part ``(s, (A, B))`` of the shift ``θ + s F``."""
        if shift is None:
            return None
        s, force = shift
        return s, force.weights[m]

    def _bias(self, theta: Array, m: int, shift: Shift | None) -> Array:
        """``b^(m) + s f_b^(m)``."""
        if shift is None or not self.network.bias:
            return self.b(theta, m)
        s, force = shift
        return self.b(theta, m) + s * force.biases[m]

    def forward(
        self,
        theta: Array,
        samples: Array | slice,
        riesz: bool = False,
        shift: Shift | None = None,
    ) -> ForwardPass:
        """Pre-activations at quadrature points ``z_q^(m)``, the hidden activities
        ``h_q^(m) = σ(z_q^(m))`` there, and what each layer read of its input activities
        (:meth:`continuum.fields.layers.LayerKind.inputs`: moments ``η^(m)`` of a dense layer,
        with ``riesz`` their Riesz images ``M_m⁻¹ η^(m)``, which the gradient needs) of the
        samples (columns) ``samples``, at the coefficients ``θ`` (or ``θ + s F``):

            z^(m+1) = layer_m(h^(m)) + b^(m),     h^(0) = X,  h^(m) = σ(z^(m)).
        """
        net = self.network
        z_q: list[Array | None] = [None]
        h_q: list[Array | None] = [None]
        image = self._data.image[:, samples] if riesz and self._data.image is not None else None
        xs = [Inputs(self._data.values[:, samples], image)]
        for m, layer in enumerate(self.layers):
            zq = layer.forward(
                self.W(theta, m), xs[m], self._bias(theta, m, shift), self._shift(shift, m)
            )
            if m == 0 and self.span is not None:
                zq += self.span.initial_moments[:, samples]
            z_q.append(zq)
            if m + 1 < net.depth:
                h = net.sigma(m + 1, zq)
                h_q.append(h)
                xs.append(self.layers[m + 1].inputs(h, riesz))
        return ForwardPass(z_q, h_q, xs)

    def outputs(self, theta: Array, inputs_q: Array) -> Array:
        """``Z = σ_out(z^(M))`` at the output quadrature points for other inputs (values at
        the input quadrature points, one column per sample: e.g. held-out test rows)."""
        if self.span is not None:
            raise ValueError(
                "an input layer in the span of the training data has no value at other inputs"
            )
        saved = self._data
        self._data = self.layers[0].data_inputs(inputs_q)
        try:
            z_q = self.forward(theta, slice(None)).z
        finally:
            self._data = saved
        return self.network.sigma(self.network.depth, hidden(z_q, -1))

    def _columns(self, samples: Array | None) -> tuple[Array | slice, int]:
        """This rank's sample columns of the data arrays (a slice for the full batch: no
        copies) and the size ``L`` of the whole batch (the cost's ``1/L``)."""
        if samples is None:
            return RowPartition.of(self.samples, self._sample_comm).rows, self.samples
        samples = np.asarray(samples)
        return samples[RowPartition.of(len(samples), self._sample_comm).rows], len(samples)

    def _cost_and_density(self, Z: Array, Y: Array, L: int) -> tuple[float, Array]:
        """``C = (1/L) Σ_l ℓ(Z^l, Y^l)`` for outputs at the output quadrature points (one
        column per sample; the loss's measure is the quadrature weights), and the loss's
        density ``g`` (``∂ℓ/∂Z = ω g``), from one pass of the loss."""
        weights = self.spaces[-1].quadrature_weights
        losses, g = self.loss.per_sample_and_density(Z, Y, weights, axis=0)
        return float(losses.sum()) / L, g

    def value(self, theta: Array, samples: Array | None = None) -> float:
        """``C`` alone: the forward pass and the loss, without its density."""
        cols, L = self._columns(samples)
        z_q = self.forward(theta, cols).z
        Z = self.network.sigma(self.network.depth, hidden(z_q, -1))
        weights = self.spaces[-1].quadrature_weights
        cost = float(self.loss.per_sample(Z, self.Y_q[:, cols], weights, axis=0).sum()) / L
        return float(self.sum_over_samples(np.array([cost]))[0])

    def gradient(self, theta: Array, samples: Array | None = None) -> tuple[float, Array]:
        """``C`` and the Riesz representative of ``δC/δθ`` in coefficient space."""
        cost, grad, _ = self.backward(theta, samples)
        return cost, grad

    def backward(
        self, theta: Array, samples: Array | None = None
    ) -> tuple[float, Array, list[Array]]:
        """``C``, the Riesz gradient, and the loads ``d^(m) = ∫ φ δ^(m)`` (m = 1 … M) of the
        back-propagated fields, one column per sample of this rank (``δ`` includes the factor 1
        of the cost density; divide by ``L`` for ``∂C``).  Samples split over the ranks: each
        rank's part of ``C`` and of the gradient, summed in one ``Allreduce``."""
        cost, factors, biases, loads = self._gradient_factors(theta, samples)
        grad = np.empty(self.size + 1)  # every weight block and bias slice is written below
        for m, (r, s) in enumerate(factors):
            np.matmul(r, s.T, out=self.W(grad, m))
            if self.network.bias:
                grad[self._b[m]] = biases[m]
        grad[-1] = cost
        grad = self.sum_over_samples(grad)
        return float(grad[-1]), grad[:-1], loads

    def factored_force(
        self, theta: Array, rates: list[tuple[float, float]], shift: Shift | None = None
    ) -> FactoredForce:
        """The full-batch force ``−η ⊙ δC/δθ`` at ``θ`` (or ``θ + s F``) in factored form, with
        the continuum rates ``(η_w, η_b)`` of every layer.  Samples split over the ranks: the
        factors' columns gathered (``A``, ``B`` of all ``L`` samples on every rank), the bias
        forces summed."""
        _, factors, biases, _ = self._gradient_factors(theta, None, shift)
        if self._sample_comm.size > 1:
            factors = [(self.gather_samples(r), self.gather_samples(s)) for r, s in factors]
            if self.network.bias:
                biases = [self.sum_over_samples(g) for g in biases]
        layers = list(zip(factors, biases, rates, strict=True))
        return FactoredForce(
            [(-eta_w * r, s) for (r, s), _, (eta_w, _) in layers],
            [-eta_b * g for _, g, (_, eta_b) in layers],
        )

    def add_forces(self, theta: Array, weighted: list[tuple[float, FactoredForce]]) -> None:
        """``θ += Σ_i c_i F_i`` in place, one GEMM per weight block:
        ``W += [A_1 … A_k] diag(c) [B_1 … B_k]ᵀ`` (rank ``k·L``)."""
        for m in range(self.network.depth):
            a = np.hstack([c * f.weights[m][0] for c, f in weighted])
            b = np.hstack([f.weights[m][1] for _, f in weighted])
            w = self.W(theta, m)
            if w.size:  # Wᵀ (column-major, no copy) += B Aᵀ
                scipy.linalg.blas.dgemm(1.0, b, a, beta=1.0, c=w.T, trans_b=True, overwrite_c=True)
            if self.network.bias:
                theta[self._b[m]] += sum(c * f.biases[m] for c, f in weighted)

    def _gradient_factors(
        self, theta: Array, samples: Array | None, shift: Shift | None = None
    ) -> tuple[float, list[tuple[Array, Array]], list[Array], list[Array]]:
        """``C`` and the gradient in factored form: ``δC/δW^(m) ↦ R_m S_mᵀ`` with
        ``R_m = (1/L) M_{m+1}⁻¹ D^(m+1)`` (this rank's rows) and ``S_m = M_m⁻¹ H^(m)``, the bias
        gradients ``R_m 1`` (all rows), and the loads ``d^(m)``."""
        net = self.network
        cols, L = self._columns(samples)
        if self._readout is not None:
            return self._linear_readout_factors(theta, cols, L, shift)
        z_q, h_q, xs = self.forward(theta, cols, riesz=True, shift=shift)
        M = net.depth
        Z, Y = net.sigma(M, hidden(z_q, M)), self.Y_q[:, cols]
        cost, g = self._cost_and_density(Z, Y, L)
        delta_q = g if self._linear_output else net.dsigma(M, hidden(z_q, M), Z) * g
        factors: list[tuple[Array, Array]] = [(np.empty(0), np.empty(0))] * M
        biases: list[Array] = [np.empty(0)] * M
        loads: list[Array] = [np.empty(0)] * M
        for m in range(M - 1, -1, -1):
            layer = self.layers[m]
            d, rd = self.layer_space(m + 1).moments(delta_q)
            loads[m] = d
            rd = rd / L
            factors[m] = layer.force(xs[m], delta_q, rd, L)
            if net.bias:
                biases[m] = rd.sum(axis=1)
            if m > 0:
                back = layer.backward(self.W(theta, m), delta_q, d, self._shift(shift, m))
                delta_q = net.dsigma(m, hidden(z_q, m), h_q[m]) * back
        return cost, factors, biases, loads

    def _linear_readout_factors(
        self, theta: Array, cols: Array | slice, L: int, shift: Shift | None
    ) -> tuple[float, list[tuple[Array, Array]], list[Array], list[Array]]:
        """:meth:`_gradient_factors` of one layer with a linear output, in coefficient space
        (:meth:`_linear_readout`): no quadrature per call, equal to the general path to
        rounding."""
        assert self._readout is not None  # one layer with a linear output
        rest = self._readout[1]
        u = self.gather_rows(self.readout_residual(theta, cols, shift), 0)  # P_h r
        d = self.spaces[1].mass @ u  # ∫ r φ
        cost = 0.5 * (float(np.sum(u * d)) + float(np.sum(rest[cols]))) / L
        rd = u / L
        bias = rd.sum(axis=1) if self.network.bias else np.empty(0)
        return cost, [(rd[self.rows[0]], self.riesz0[:, cols])], [bias], [d]

    def readout_residual(
        self, theta: Array, cols: Array | slice = slice(None), shift: Shift | None = None
    ) -> Array:
        """This rank's rows of ``u = M_1⁻¹ ∫ r φ = W η⁽⁰⁾ + b 1ᵀ + P_h f`` (one layer with a
        linear output, :meth:`_linear_readout`), one column per sample."""
        assert self._readout is not None  # one layer with a linear output
        rows = self.rows[0]
        b = self._bias(theta, 0, shift)[rows, None]
        readout = self._dense(0).apply(self.W(theta, 0), self.eta0[:, cols], self._shift(shift, 0))
        return readout + b + self._readout[0][rows, cols]

    def tangent(self, theta: Array, theta_dot: Array, samples: Array) -> list[Array]:
        """Coefficients of ``ż^(m+1) = Ẇ^(m) η^(m) + W^(m) η̇^(m) + ḃ^(m)`` (m = 0 … M−1),
        with ``η̇^(m) = ∫ ψ σ'(z^(m)) ż^(m)`` and ``η̇^(0) = 0`` (one process: full rows; dense
        layers, whose ``ż`` lies in ``V_{m+1}``)."""
        net = self.network
        for m in range(net.depth):
            self._dense(m)
        z_q, h_q, xs = self.forward(theta, samples)
        zdot: list[Array] = []
        eta_dot = np.zeros_like(xs[0].values)
        for m in range(net.depth):
            c = (
                self.W(theta_dot, m) @ xs[m].values
                + self.W(theta, m) @ eta_dot
                + self.b(theta_dot, m)[:, None]
            )
            zdot.append(c)
            if m + 1 < net.depth:
                space = self.layer_space(m + 1)
                slope = net.dsigma(m + 1, hidden(z_q, m + 1), h_q[m + 1])
                eta_dot = space.load(slope * space.at_quadrature(c))
        return zdot

    def lattice_values(self, theta: Array, evaluators: list) -> tuple[list[Array], list[Array]]:
        """``w^(m)(x_i, y_j)`` (a unit-cell layer: ``w_s^(m)(x_i)``) and ``b^(m)(x_i)`` with
        point-evaluation matrices per layer (for an input layer in the data span,
        ``w^(0) − w^(0)(0)``: the offset is the span's
        :meth:`~continuum.fields.dataspan.DataSpan.initial_field`)."""
        w, b = [], []
        for m, layer in enumerate(self.layers):
            Ex, Ey = evaluators[m + 1], evaluators[m]
            w.append(self.sum_over_ranks(layer.lattice_values(self.W(theta, m), Ex, Ey)))
            b.append(Ex @ self.b(theta, m))
        return w, b
