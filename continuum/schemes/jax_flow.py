"""The full-batch gradient flow of dense Galerkin fields by RK4, compiled with JAX
(``[continuum] scheme = "jax"``; docs/physics.md "Continuum", the compiled flow).

Once the factor spaces are built, the semi-discrete equations of a dense network
(:mod:`continuum.fields.galerkin`) are dense linear algebra on fixed arrays: per neuron layer
``m`` the tabulation ``T_m`` (``n_q × n``, ``T_qa = φ_a(x_q)``), the quadrature weights ``ω_m``
and the mass matrix ``M_m = T_mᵀ diag(ω_m) T_m`` (an index layer: ``T = M = 1``, ``ω = 1``);
the input moments ``η⁽⁰⁾ = T_0ᵀ (ω_0 ⊙ X)`` and the targets ``Y`` at the output points.  The
continuum cost of the coefficients ``θ = (W^(m), b^(m))`` is

    z^(m+1) = T_{m+1} (W^(m) η^(m) + b^(m) 1ᵀ),     η^(m) = T_mᵀ (ω_m ⊙ σ(z^(m)))  (m ≥ 1),
    C(θ) = (1/L) Σ_l ℓ(σ_out(z^(M),l), Y^l)         (ℓ: ½ ω·(Z − Y)², or the softmax
                                                      cross-entropy on an index output),

written once in JAX; ``jax.grad`` gives the coefficient gradient ``∂C/∂θ``, and the Riesz map
of the product spaces turns it into the L2 representative of ``δC/δθ`` that the Galerkin
flow follows,

    δC/δW^(m) ↦ M_{m+1}⁻¹ (∂C/∂W^(m)) M_m⁻¹,        δC/δb^(m) ↦ M_{m+1}⁻¹ ∂C/∂b^(m)

(``∂C/∂W^(m) = (1/L) D^(m+1) H^(m)ᵀ`` with the loads ``D`` and moments ``H`` of
:mod:`continuum.fields.galerkin`: the same force as its hand-written backward pass, to
rounding).  The dense inverses of the small mass matrices are computed once.  Classical RK4 of
``θ̇ = −η ⊙ δC/δθ`` with the training ``dt`` then runs all the steps between two output times in
one ``jax.lax.fori_loop`` under ``jax.jit`` (float64, compiled ahead of time when the rule is
built: :attr:`JaxFlow.compile_seconds`), so a step pays no Python or per-call overhead.  The
compiled loop depends only on the layer structure, the activation, the loss, ``dt`` and the
arrays' shapes, so models equal in those (an ensemble over seeds, a repeated build) reuse it
within a process (:data:`COMPILED`; :func:`forget_compiled` empties it).

Covered: dense layers on line, grid or index layouts, any depth, every activation, biases on
or off, ``mse`` or ``cross-entropy``, one MPI rank, the input layer in the tensor space; the
registry (:mod:`continuum.models.registry`) refuses the rest when the config is loaded, and
:class:`JaxFlow` refuses more than one rank when it is built.  The tabulations are dense
matrices: the scheme is meant for the small factor spaces of high-order elements on few
cells, where a gradient is some thirty small products; on nodal spaces (``[continuum]
quadrature = "nodal"``) ``T`` is the identity and ``ω``, ``M⁻¹`` are diagonals, applied as
vectors.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import numpy as np
from mpi4py import MPI

from continuum.fem.spaces import FactorSpace, IndexSpace
from continuum.fields.galerkin import GalerkinNetwork
from continuum.fields.layers import DenseLayer
from continuum.schemes.factored_flow import RK4_STAGES
from discrete.config import ConfigError
from discrete.experiment import DiscreteSetup
from discrete.training import Rule, State

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after float64 is switched on)

Array = np.ndarray
Activation = Callable[[jax.Array], jax.Array]
Force = Callable[[jax.Array, dict], jax.Array]


def jax_activation(name: str, quadratic: tuple[float, float, float]) -> Activation:
    """σ of ``[network] activation`` in JAX (those of :mod:`discrete.activations`; relu with
    ``σ'(0) = 0`` as there)."""
    c0, c1, c2 = (float(c) for c in quadratic)
    table: dict[str, Activation] = {
        "linear": lambda z: z,
        "quadratic": lambda z: c0 + c1 * z + c2 * z * z,
        "tanh": jnp.tanh,
        "softplus": lambda z: jnp.logaddexp(0.0, z),
        "relu": lambda z: jnp.where(z > 0, z, 0.0),
    }
    if name not in table:
        raise ValueError(f"no JAX form of the activation {name!r}; choose one of {list(table)}")
    return table[name]


def space_arrays(space: FactorSpace | IndexSpace) -> dict[str, Array | None]:
    """One neuron layer's factor space as the compiled cost reads it: ``T``, ``Tᵀ diag(ω)``,
    ``M⁻¹`` and ``ω`` (:meth:`~continuum.fem.spaces.FactorSpace.operators`: ``None`` for an
    identity, a vector for a diagonal)."""
    operators = space.operators()  # its fields as they are (``asdict`` would copy them)
    return {f.name: getattr(operators, f.name) for f in dataclasses.fields(operators)}


def apply_operator(matrix: jax.Array | None, x: jax.Array) -> jax.Array:
    """``A x``: ``x`` for an identity (``None``), ``diag(a) x`` for a diagonal given as its
    vector ``a``."""
    if matrix is None:
        return x
    if matrix.ndim == 1:
        return matrix.reshape(-1, *([1] * (x.ndim - 1))) * x
    return matrix @ x


@dataclass(frozen=True)
class PackedArrays:
    """The arrays of a compiled flow (a pytree of numpy arrays and ``None``) as one float64
    vector: one numpy argument of the compiled call (a few microseconds to hand over) instead
    of one device array per array (tens of microseconds each to put there), unpacked by static
    slices at the top of the compiled call."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]

    @classmethod
    def pack(cls, tree: dict) -> tuple[PackedArrays, Array]:
        """The layout of ``tree`` and its leaves concatenated (integers are small indices:
        exact in float64)."""
        leaves, treedef = jax.tree.flatten(tree)
        leaves = [np.asarray(leaf) for leaf in leaves]
        flat = np.concatenate([leaf.ravel().astype(float) for leaf in leaves] or [np.zeros(0)])
        layout = cls(treedef, tuple(a.shape for a in leaves), tuple(a.dtype for a in leaves))
        return layout, flat

    def unpack(self, flat: jax.Array) -> dict:
        """The pytree back from its vector (traced: the slices are static)."""
        leaves, start = [], 0
        for shape, dtype in zip(self.shapes, self.dtypes, strict=True):
            size = math.prod(shape)
            leaves.append(flat[start : start + size].reshape(shape).astype(dtype))
            start += size
        return jax.tree.unflatten(self.treedef, leaves)


class Loop(Protocol):
    """How a compiled flow advances ``θ̇ = F(θ)`` over a leap of training steps: ``trace``
    writes the loop in JAX around the force ``F(θ, arrays)``, ``abstract`` gives the shapes of
    the loop's arguments before ``arrays`` (it is compiled ahead of time for them), and
    ``leap`` calls the compiled loop and returns ``θ`` after ``steps`` training steps of ``h``
    (``key``: what else the trace depends on)."""

    key: tuple
    scheme: str
    """The ``[continuum] scheme`` that runs this loop."""

    def trace(self, force: Force) -> Callable: ...

    def abstract(self, size: int) -> tuple: ...

    def leap(self, run: Callable, theta: Array, steps: int, arrays: Any) -> Array:
        """``θ`` after ``steps`` training steps by the compiled loop ``run`` (``arrays``: its
        last argument, passed through to the force)."""

    def carried(self) -> dict[str, float]:
        """What the loop carries from leap to leap (:meth:`discrete.training.Rule.carried`)."""

    def carry(self, values: dict[str, float]) -> None:
        """Continue with numbers saved from :meth:`carried`."""


class RK4Loop:
    """Classical RK4 with the training step ``h``: all steps of a leap in one ``fori_loop``;
    the four stages ``k_i = F(θ + c_i h k_{i−1})``, ``θ' = θ + Σ_i b_i h k_i``
    (:data:`RK4_STAGES`) are one ``scan``, so the force is compiled once."""

    scheme = "jax"

    def __init__(self, h: float):
        self.h = h
        self.key = ("rk4", h)

    def abstract(self, size: int) -> tuple:
        return jax.ShapeDtypeStruct((size,), jnp.float64), jax.ShapeDtypeStruct((), jnp.int32)

    def trace(self, force: Force) -> Callable:
        h = self.h
        c, b = (jnp.asarray(column) for column in zip(*RK4_STAGES, strict=True))

        def steps_of_rk4(theta: jax.Array, steps: jax.Array, arrays: dict) -> jax.Array:
            def step(_, th):
                def stage(carry, weights):
                    theta_next, k = carry
                    c_i, b_i = weights
                    k = force(th + c_i * h * k, arrays)
                    return (theta_next + b_i * h * k, k), None

                (theta_next, _), _ = jax.lax.scan(stage, (th, jnp.zeros_like(th)), (c, b))
                return theta_next

            return jax.lax.fori_loop(0, steps, step, theta)

        return steps_of_rk4

    def leap(self, run: Callable, theta: Array, steps: int, arrays: Any) -> Array:
        return np.asarray(run(theta, np.int32(steps), arrays))

    def carried(self) -> dict[str, float]:
        return {}  # a fixed step

    def carry(self, values: dict[str, float]) -> None:
        """A fixed step carries nothing."""


class CompiledFlow(Rule, ABC):
    """The flow ``θ̇ = −η ⊙ R(θ)`` compiled with JAX: a subclass writes the Riesz gradient
    ``R(θ, arrays)`` of its fields in JAX (:meth:`_riesz_gradient`) and hands over the arrays
    it reads and a key of what else its trace depends on; the time loop (``loop``: classical
    RK4 with the training ``dt`` by default, :class:`RK4Loop`; or
    :class:`~continuum.schemes.jax_adaptive.ToleranceLoop`) runs all steps between two output
    times in one compiled call, compiled when the rule is built (:attr:`compile_seconds`) and
    shared by the rules of equal keys in the process (:data:`COMPILED`).  One MPI rank."""

    def __init__(
        self,
        cost,
        rates: Array,
        h: float,
        comm: MPI.Comm,
        arrays: dict,
        key: tuple,
        loop: Loop | None = None,
    ):
        super().__init__(cost, rates, h)
        self.loop: Loop = loop or RK4Loop(self.h)
        if comm.size > 1:  # every rank refuses alike: rank 0 alone prints it
            refusal = ConfigError(
                f"[continuum] scheme = {self.loop.scheme!r} runs on one MPI rank, not "
                f"{comm.size}: choose scheme = 'matched' to split the fields over the ranks"
            )
            refusal.reported_by_root = comm.rank != 0  # type: ignore[attr-defined]
            raise refusal
        # handed to the compiled call as numpy: its own transfer is cheaper than a device_put
        self._layout, self._arrays = PackedArrays.pack(
            {**arrays, "rates": np.asarray(rates, float)}
        )
        key = (type(self).__name__, key, self.loop.key, self._layout)
        start = time.perf_counter()
        if key not in COMPILED:
            run, unpack = self.loop.trace(self._force), self._layout.unpack
            traced = jax.jit(
                lambda *head_and_flat: run(*head_and_flat[:-1], unpack(head_and_flat[-1]))
            )
            COMPILED[key] = traced.lower(*self.loop.abstract(len(rates)), self._arrays).compile()
        self._run = COMPILED[key]
        self.compile_seconds = time.perf_counter() - start
        """Wall time of compiling the loop when the rule was built (about 0 when reused)."""
        self._gradient: Callable | None = None

    @staticmethod
    def check_layout(parts: list[tuple[slice, slice]], size: int) -> None:
        """Raise unless the ``(weights, biases)`` slices of ``parts`` tile ``θ`` in order (the
        layout the compiled gradient concatenates)."""
        order = np.concatenate([np.arange(size)[s] for part in parts for s in part])
        if not np.array_equal(order, np.arange(size)):
            raise ValueError("the coefficient layout is not weights then biases, part by part")

    @abstractmethod
    def _riesz_gradient(self, theta: jax.Array, arrays: dict) -> jax.Array:
        """The Riesz representative of ``δC/δθ`` at ``θ``, in the layout of ``θ``."""

    def _force(self, theta: jax.Array, arrays: dict) -> jax.Array:
        """The flow's right-hand side ``F(θ) = −η ⊙ R(θ)``."""
        return -arrays["rates"] * self._riesz_gradient(theta, arrays)

    # ------------------------------------------------------------------ the Rule interface

    def riesz_gradient(self, theta: Array) -> Array:
        """The Riesz gradient at ``θ`` (jitted on first use): what the fields' own
        ``gradient`` returns, to rounding."""
        if self._gradient is None:
            unpack = self._layout.unpack
            self._gradient = jax.jit(lambda th, flat: self._riesz_gradient(th, unpack(flat)))
        return np.asarray(self._gradient(theta, self._arrays))

    def leap(self, state: State, steps: int) -> State:
        """The state ``steps`` training steps later, in one call of the compiled loop."""
        theta = self.loop.leap(self._run, state.theta, steps, self._arrays)
        step = state.step + steps
        return State(step * self.h, step, theta)

    def step(self, state: State) -> State:
        return self.leap(state, 1)

    def carried(self) -> dict[str, float]:
        return self.loop.carried()

    def carry(self, values: dict[str, float]) -> None:
        self.loop.carry(values)

    def advance(self, state: State, steps: int) -> Iterator[State]:
        """The state after ``steps`` steps, all taken in one compiled loop (the intermediate
        states stay inside it)."""
        if steps > 0:
            yield self.leap(state, steps)


class JaxFlow(CompiledFlow):
    """RK4 of the full-batch Galerkin flow ``θ̇ = −η ⊙ δC/δθ`` of a dense
    :class:`~continuum.fields.galerkin.GalerkinNetwork`, compiled with JAX (module docstring);
    ``rates`` per coefficient (:meth:`~continuum.fields.galerkin.CoefficientLayout.per_group`),
    ``activation`` the name and the quadratic coefficients of the network's σ
    (:func:`jax_activation`)."""

    def __init__(
        self,
        galerkin: GalerkinNetwork,
        rates: Array,
        h: float,
        activation: tuple[str, tuple[float, float, float]],
        loop: Loop | None = None,
    ):
        if galerkin.span is not None or not all(
            isinstance(layer, DenseLayer) for layer in galerkin.layers
        ):
            raise ValueError("the compiled flow is that of dense layers in the tensor space")
        self.galerkin = galerkin
        net = galerkin.network
        self._layers = [
            (*galerkin.layer_slices(m), shape) for m, shape in enumerate(galerkin.shapes)
        ]
        self.check_layout([(w, b) for w, b, _ in self._layers], galerkin.size)
        self._bias = net.bias
        self._depth = net.depth
        self._sigma = jax_activation(*activation)
        self._identity_output = net.output == "identity" or net.activation.name == "linear"
        self._cross_entropy = galerkin.loss.name == "cross-entropy"
        arrays = {
            "spaces": [space_arrays(galerkin.layer_space(m)) for m in range(net.depth + 1)],
            "eta0": galerkin.eta0,
            "targets": galerkin.Y_q,
        }
        key = (
            tuple((w.start, w.stop, b.start, b.stop, shape) for w, b, shape in self._layers),
            (self._bias, activation, self._identity_output, self._cross_entropy),
        )
        super().__init__(galerkin, rates, h, galerkin.comm, arrays, key, loop)

    # ------------------------------------------------------------------ the compiled cost

    def _cost(self, parts: list[tuple[jax.Array, jax.Array | None]], arrays: dict) -> jax.Array:
        """``C`` of the layers' ``(W^(m), b^(m))`` from the spaces' arrays (module docstring)."""
        spaces, eta = arrays["spaces"], arrays["eta0"]
        L = eta.shape[1]
        z_q = eta
        for m, (W, b) in enumerate(parts):
            z = W @ eta
            if b is not None:
                z = z + b[:, None]
            z_q = apply_operator(spaces[m + 1]["tabulation"], z)
            if m + 1 < self._depth:
                eta = apply_operator(spaces[m + 1]["load"], self._sigma(z_q))
        Z = z_q if self._identity_output else self._sigma(z_q)
        Y = arrays["targets"]
        if self._cross_entropy:
            return -jnp.sum(Y * jax.nn.log_softmax(Z, axis=0)) / L
        r = Z - Y
        return 0.5 * jnp.sum(spaces[-1]["weights"] @ (r * r)) / L

    def _riesz_gradient(self, theta: jax.Array, arrays: dict) -> jax.Array:
        """The Riesz representative ``M_{m+1}⁻¹ (∂C/∂W) M_m⁻¹``, ``M_{m+1}⁻¹ ∂C/∂b`` of
        ``δC/δθ``, in the layout of ``θ``; differentiated by the layers' blocks, not by ``θ``
        (whose slices would differentiate to padded copies of ``θ``, one per block)."""
        blocks = [
            (theta[w].reshape(shape), theta[b] if self._bias else None)
            for w, b, shape in self._layers
        ]
        spaces = arrays["spaces"]
        parts = []
        for m, (gw, gb) in enumerate(jax.grad(self._cost)(blocks, arrays)):
            out, inp = spaces[m + 1]["inverse_mass"], spaces[m]["inverse_mass"]
            gw = apply_operator(inp, apply_operator(out, gw).T).T  # gw M_m⁻ᵀ = (M_m⁻¹ gwᵀ)ᵀ
            parts.append(gw.ravel())
            if gb is not None:
                parts.append(apply_operator(out, gb))
        return jnp.concatenate(parts)


def jax_rule(galerkin: GalerkinNetwork, setup: DiscreteSetup, loop: Loop | None = None) -> JaxFlow:
    """``scheme = "jax"``: the compiled RK4 flow with the training dt and the continuum rates
    (``loop``: another compiled time loop of the same force)."""
    cfg = setup.config
    rates = galerkin.per_group(setup.dictionary.continuum_rates())
    activation = (cfg.network.activation, tuple(cfg.network.quadratic))
    return JaxFlow(galerkin, rates, cfg.training.dt, activation, loop)


COMPILED: dict[tuple, Any] = {}
"""The compiled RK4 loops of this process by what their trace depends on (the rule's class,
its layout and options, ``dt``, the arrays' shapes)."""


def forget_compiled() -> None:
    """Empty :data:`COMPILED`: the next model compiles its loop afresh."""
    COMPILED.clear()
