"""The field theory a discrete setup becomes in the continuum limit (docs/physics.md "Continuum";
README "Using it").

``print(FieldTheory(setup))`` shows the dictionary, the fields and their domains, the data
kernels in factored form and, where the discrete Hessian is banded, the local coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from discrete.conventions import Convention
from discrete.experiment import DiscreteSetup
from discrete.locality import LocalCoefficients, local_coefficients
from discrete.residual import ResidualNetwork
from discrete.training import Momentum

Array = np.ndarray


@dataclass(frozen=True)
class LowRankKernel:
    """``K(u, v) = Σ_l c_l f_l(u) g_l(v)``, kept as its factors (never a dense matrix)."""

    formula: str
    rank: int
    left: str
    right: str
    coefficient: float

    def __str__(self) -> str:
        return f"{self.formula}   (rank ≤ {self.rank}; factors {self.left} ⊗ {self.right})"


def residual_fields(net: ResidualNetwork, conv: Convention) -> list[tuple[str, str]]:
    """The fields of a residual network's depth continuum (docs/physics.md "Depth as a coordinate"):
    the end layers and one block field on the depth coordinate τ, with the stream ``s(t, τ, x)``
    they drive."""
    inp, stream, out = conv.layers[0].domain, conv.layers[1].domain, conv.layers[-1].domain
    depth = f"[0,1]_τ ({net.blocks} blocks at τ_k = (k+½)/{net.blocks})"
    fields = [("w^in(t, x, y)", f"{stream} × {inp}")]
    fields += [("b^in(t, x)", stream)] if net.bias else []
    fields += [("w(t, τ, x, y)", f"{depth} × {stream} × {stream}")]
    fields += [("b(t, τ, x)", f"{depth} × {stream}")] if net.bias else []
    fields += [("w^out(t, x, y)", f"{out} × {stream}")]
    fields += [("b^out(t, x)", out)] if net.bias else []
    fields.append(("s(t, τ, x): ∂_τ s = ∫ w σ(s) dy + b", f"[0,1]_τ × {stream}"))
    return fields


class FieldTheory:
    """Fields, kernels and (where they exist) local coefficients of a setup's continuum."""

    def __init__(self, setup: DiscreteSetup):
        self.setup = setup
        net, conv = setup.network, setup.convention
        self.fields = []
        if isinstance(net, ResidualNetwork):
            self.fields = residual_fields(net, conv)
        for m in range(0 if isinstance(net, ResidualNetwork) else net.depth):
            out, inp = conv.layers[m + 1], conv.layers[m]
            if conv.weights[m] == "product":
                self.fields.append((f"w^({m})(t, x, y)", f"{out.domain} × {inp.domain}"))
            else:
                S = net.layers[m].weight_shape[1]
                self.fields.append((f"w_s^({m})(t, x), s = 1…{S}", out.domain))
            if net.bias:
                self.fields.append((f"b^({m})(t, x)", out.domain))
        L = setup.data.samples
        self.kernels = [
            LowRankKernel("A(y, y') = (1/L) Σ_l X^l(y) X^l(y')", L, "X^l", "X^l", 1.0 / L),
            LowRankKernel("B(x, y) = (1/L) Σ_l Y^l(x) X^l(y)", L, "Y^l", "X^l", 1.0 / L),
        ]
        self.local: LocalCoefficients | None = None
        if net.depth == 1 and net.activation.name == "linear":
            self.local = local_coefficients(setup.cost, setup.dictionary)

    def quadratic_couplings(self) -> str:
        """The coupled two-field theory of a two-layer network with σ = c₀ + c₁z + c₂z².

        With ``z⁽¹⁾(y) = ∫ w⁽⁰⁾(y, u) X(u) du + b⁽⁰⁾(y)`` the output expands as
        ``z⁽²⁾ = c₀ ∫w⁽¹⁾ dy + c₁ ∫w⁽¹⁾ z⁽¹⁾ dy + c₂ ∫w⁽¹⁾ (z⁽¹⁾)² dy + b⁽¹⁾``, so the cost
        ``½ ∫ (z⁽²⁾ − Y)²`` holds a mass-like term for ``w⁽¹⁾`` alone (from ``c₀``), a
        bilinear ``w⁽¹⁾–w⁽⁰⁾`` coupling (``c₁``) and a ``w⁽¹⁾ (w⁽⁰⁾)²`` coupling (``c₂``).
        """
        c0, c1, c2 = self.setup.config.network.quadratic
        return "\n".join(
            [
                f"two coupled fields (σ = {c0:g} + {c1:g} z + {c2:g} z²):",
                "  z⁽¹⁾(y) = ∫ w⁽⁰⁾(y,u) X(u) du + b⁽⁰⁾(y)",
                f"  z⁽²⁾(x) = {c0:g}·∫w⁽¹⁾(x,y)dy + {c1:g}·∫w⁽¹⁾ z⁽¹⁾ dy + {c2:g}·∫w⁽¹⁾ (z⁽¹⁾)² dy"
                " + b⁽¹⁾(x)",
                f"  mass-like term of the last layer only: ½ ({c0:g})² ∫dx (∫w⁽¹⁾ dy)²",
                f"  couplings: {c1:g}·w⁽¹⁾w⁽⁰⁾X (bilinear), {c2:g}·w⁽¹⁾(w⁽⁰⁾X)² (cubic in z⁽²⁾)",
            ]
        )

    @property
    def linear(self) -> bool:
        return self.setup.network.activation.name == "linear"

    def __str__(self) -> str:
        s = self.setup
        lines = [f"FieldTheory of {s.network}", str(s.dictionary)]
        if isinstance(s.rule, Momentum) and s.rule.scheme == "heavy-ball":
            tr = s.config.training
            lines.append(
                f"heavy ball ({tr.momentum_form} friction): v ← μv − ε η_θ ∂C/∂θ, θ ← θ + v with "
                f"μ = {s.rule.mu:.10g}, ε = {s.rule.epsilon:.6g} (h = {s.rule.h:g}, "
                f"γ = {tr.gamma:g})"
            )
        lines.append("fields:")
        lines += [f"  {name:<28} on {domain}" for name, domain in self.fields]
        lines.append(f"data ({s.data.description}), kernels in factored form:")
        lines += [f"  {k}" for k in self.kernels]
        if s.probe_factors is not None:
            p = s.probe_factors
            lines.append(
                f"probe amplitudes: s_j = √(κLa)/a ∈ [{p.bond_amplitude.min():.4g}, "
                f"{p.bond_amplitude.max():.4g}] on {p.bonds} bonds, r_j = √(m²LΔy) on "
                f"{p.onehots} sites → ½∫[κ(∂_y w)² + m² w²], κ = {p.stiffness:g}, "
                f"m² = {p.mass:g}"
            )
        if self.local is not None:
            lines.append(self.local.summary())
        elif "unit-cell" in s.convention.weights:
            lines.append(
                "unit-cell limit (a → 0): ultra-local, z(x) = Σ_s w_s(x) h(x) + b(x); "
                "δC/δw_s is the same for every s, so only Σ_s w_s is fixed by the data"
            )
        elif self.linear and s.network.depth == 1:
            lines.append("the discrete Hessian is not banded: the theory is nonlocal")
        if s.network.activation.name.startswith("quadratic") and s.network.depth == 2:
            lines.append(self.quadratic_couplings())
        return "\n".join(lines)
