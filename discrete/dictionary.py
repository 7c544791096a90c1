"""The discrete ↔ continuum dictionary: spacings, densities, rescaled rates, γ, H.

docs/physics.md "The dictionary".  With ``W_ij = Δy_j w(x_i, y_j)`` and the cost a Riemann sum over
outputs, ``∂C/∂W_ij = Δx_i (δC/δw)(x_i, y_j)`` and ``∂C/∂b_i = Δx_i (δC/δb)(x_i)``.  The discrete
gradient flow ``θ̇ = −η_θ ∂C/∂θ`` therefore matches the continuum flow ``∂_t φ = −η δC/δφ`` exactly
when each parameter uses the rate (inverse kinetic metric)

    η_W = η Δy/Δx,        η_b = η/Δx,

and the second-order action ``∫ dt e^{γt} [½ Σ M_θ θ̇² − C]`` uses the masses ``M_θ = η/η_θ``
(``Δx/Δy`` and ``Δx``).  A residual block (docs/physics.md "Depth as a coordinate") is a depth cell
``Δτ`` as well, so its rates are ``η_W = η Δy/(Δτ Δx)`` and ``η_b = η/(Δτ Δx)``.

With ``metric = "plain"`` every parameter uses the one rate ``η``; the continuum theory
that run corresponds to then has the rates ``η Δx/Δy`` (weights) and ``η Δx`` (biases):
the two groups run on different clocks, and the bias clock stops as ``Δx → 0``.

Index layers (docs/physics.md "Index layers") have the counting measure ``Δ = 1`` and every rule
holds with it: an input index layer ``j`` into a field layer ``x`` has ``W_ij = w_j(x_i)`` and ``η_W
= η/Δx`` (a multiplet of ``d`` fields), a field layer ``y`` into an output index layer ``k`` has
``W_kj = Δy_j v_k(y_j)`` and ``η_W = η Δy``, and a bias on an index layer has ``η_b = η``.

The damped dynamics' ``√−g = e^{γt}`` reads as a de Sitter metric ``a(t)^d`` with
``a = e^{Ht}`` on a ``d``-dimensional field domain, so ``H = γ/d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conventions import Convention
from .network import Network

Array = np.ndarray


@dataclass(frozen=True)
class LayerEntry:
    """Dictionary entries of weight layer ``m`` (representative values: mean cell sizes)."""

    m: int
    dx: float
    dy: float
    domain_dim: int
    lr_weight: float
    lr_bias: float
    hubble: float
    dtau: float = 1.0
    kinds: tuple[str, str] = ("line", "line")

    @property
    def weight_map(self) -> str:
        """The field the weights of this layer sample (docs/physics.md "The dictionary";
        docs/physics.md "Index layers")."""
        out, inp = self.kinds
        if out == "index" and inp == "index":
            return "W_kj = w_kj (index to index)"
        if inp == "index":
            return "W_ij = w_j(x_i): a multiplet of input fields"
        if out == "index":
            return "W_kj = Δy_j v_k(y_j): one readout field per class"
        return "W_ij = Δy_j w(x_i, y_j)"

    @property
    def mass_weight(self) -> float:
        return 1.0 / self.lr_weight

    @property
    def mass_bias(self) -> float:
        return 1.0 / self.lr_bias


class ScalingDictionary:
    """Everything that turns the discrete run into a statement about the continuum theory."""

    def __init__(
        self,
        network: Network,
        convention: Convention,
        lr: float,
        gamma: float = 0.0,
        metric: str = "continuum",
    ):
        if metric not in ("continuum", "plain"):
            raise ValueError(f"metric must be 'continuum' or 'plain', got {metric!r}")
        self.network = network
        self.convention = convention
        self.lr = float(lr)
        self.gamma = float(gamma)
        self.metric = metric
        self.entries = [self._entry(m) for m in range(network.depth)]

    def _entry(self, m: int) -> LayerEntry:
        out, inp = self.convention.layers[m + 1], self.convention.layers[m]
        dx = float(np.mean(out.measure))
        product = self.convention.weights[m] == "product"
        dy = float(np.mean(inp.measure)) if product else 1.0
        dim = out.field_dim
        if product:
            dim += inp.field_dim
        dtau = self.network.depth_measure(m)
        if dtau != 1.0:
            dim += 1  # a residual block's field also lives on the depth coordinate τ
        if self.metric == "continuum":
            lr_w, lr_b = self.lr * dy / (dtau * dx), self.lr / (dtau * dx)
        else:
            lr_w, lr_b = self.lr, self.lr
        hubble = self.gamma / dim if dim > 0 else float("nan")
        return LayerEntry(m, dx, dy, dim, lr_w, lr_b, hubble, dtau, (out.layout, inp.layout))

    def rates(self) -> Array:
        """Per-parameter discrete rates ``η_θ`` as a vector on θ (exact per-neuron measures)."""
        net, conv = self.network, self.convention
        rates = net.params.zeros()
        for m in range(net.depth):
            dx = conv.layers[m + 1].measure * net.depth_measure(m)
            if self.metric == "continuum":
                net.params.W(rates, m)[...] = self.lr * conv.input_measure(net, m) / dx[:, None]
                if net.bias:
                    net.params.b(rates, m)[...] = self.lr / dx
            else:
                rates[...] = self.lr
        return rates

    def continuum_rates(self) -> list[tuple[float, float]]:
        """The continuum rates ``(η_w, η_b)`` that the discrete run realises, per layer."""
        if self.metric == "continuum":
            return [(self.lr, self.lr) for _ in self.entries]
        return [(self.lr * e.dtau * e.dx / e.dy, self.lr * e.dtau * e.dx) for e in self.entries]

    def as_dict(self) -> dict:
        """Plain-data form (for HDF5 attributes and summary.json)."""
        return {
            "lr": self.lr,
            "gamma": self.gamma,
            "metric": self.metric,
            "layers": [
                {
                    "m": e.m,
                    "dx": e.dx,
                    "dy": e.dy,
                    "density_out": 1.0 / e.dx,
                    "density_in": 1.0 / e.dy,
                    "domain_dim": e.domain_dim,
                    "lr_weight": e.lr_weight,
                    "lr_bias": e.lr_bias,
                    "mass_weight": e.mass_weight,
                    "mass_bias": e.mass_bias,
                    "hubble": e.hubble,
                    "dtau": e.dtau,
                    "weight_map": e.weight_map,
                    "continuum_lr_weight": cw,
                    "continuum_lr_bias": cb,
                }
                for e, (cw, cb) in zip(self.entries, self.continuum_rates(), strict=True)
            ],
        }

    def __str__(self) -> str:
        if any(e.dtau != 1.0 for e in self.entries):
            return self._residual_table()
        lines = [
            f"dictionary (metric = {self.metric}, η = {self.lr:g}, γ = {self.gamma:g})",
            "  layer  Δx        Δy        η_W=ηΔy/Δx  η_b=η/Δx    M_W       d  H=γ/d",
        ]
        for e in self.entries:
            lines.append(
                f"  {e.m:>5}  {e.dx:<9.4g} {e.dy:<9.4g} {e.lr_weight:<11.4g} {e.lr_bias:<11.4g}"
                f" {e.mass_weight:<9.4g} {e.domain_dim}  {e.hubble:.4g}"
            )
        if any("index" in e.kinds for e in self.entries):
            lines.append("  index layers (counting measure Δ = 1, never refined):")
            lines.extend(f"    layer {e.m}: {e.weight_map}" for e in self.entries)
        return "\n".join(lines + self._plain_lines())

    def _residual_table(self) -> str:
        """The table of a residual network: the blocks are depth cells ``Δτ`` as well."""
        lines = [
            f"dictionary (metric = {self.metric}, η = {self.lr:g}, γ = {self.gamma:g})",
            "  layer     Δτ        Δx        Δy        η_W=ηΔy/(ΔτΔx) η_b=η/(ΔτΔx)  d  H=γ/d",
        ]
        for e in self.entries:
            name = self.network.layer_name(e.m)
            lines.append(
                f"  {name:<9} {e.dtau:<9.4g} {e.dx:<9.4g} {e.dy:<9.4g} {e.lr_weight:<14.4g} "
                f"{e.lr_bias:<13.4g} {e.domain_dim}  {e.hubble:.4g}"
            )
        return "\n".join(lines + self._plain_lines())

    def _plain_lines(self) -> list[str]:
        lines: list[str] = []
        if self.metric == "plain":
            lines.append("  one global rate: the continuum theory this run realises has")
            for e, (cw, cb) in zip(self.entries, self.continuum_rates(), strict=True):
                cell = "Δτ" if e.dtau != 1.0 else ""
                lines.append(
                    f"    layer {e.m}: η_w = η{cell}Δx/Δy = {cw:.4g}, η_b = η{cell}Δx = {cb:.4g}"
                )
            lines.append(
                "  weights and biases run on different clocks, and η_b → 0 as Δx → 0: "
                "no width limit exists unless the rates are rescaled (metric = 'continuum')."
            )
        return lines
