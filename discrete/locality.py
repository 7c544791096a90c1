"""Local limits of banded quadratic costs: stiffness K, mass J and source j.

docs/physics.md "Continuum".  Order the parameters of a linear one-layer network on a line, ``φ_n``
at positions ``s_n``.  When the Hessian ``H`` of ``C = ½ φᵀHφ − gᵀφ + const`` couples nearest
neighbours only, the identity ``2 φ_n φ_{n+1} = φ_n² + φ_{n+1}² − (φ_{n+1} − φ_n)²`` rewrites

    C = ½ Σ_n k_n (φ_{n+1} − φ_n)² + ½ Σ_n μ_n φ_n² − Σ_n g_n φ_n,
    k_n = −H_{n,n+1},   μ_n = H_{nn} + H_{n,n−1} + H_{n,n+1}.

With the field normalisation ``φ_n = Δ_n f(s_n)`` and ``φ_{n+1} − φ_n ≈ Δ a ∂_s f`` (site
spacing ``a``) the gradient expansion gives the local action
``½ ∫ [ρ ḟ² − K (∂_s f)² − J f²] + ∫ j f`` with

    K = k Δ² a,    J = μ Δ²/a,    j = g Δ/a,    ρ = M Δ²/a   (M = 1/η_φ the kinetic mass).

``K`` can be negative (a data set with positively correlated neighbours): that is the
Lorentz-violating, unstable case, and it is reported, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost import Cost
from .dictionary import ScalingDictionary

Array = np.ndarray


@dataclass(frozen=True)
class LocalCoefficients:
    """Lattice values of ``K`` (on bonds), ``J``, ``j``, ``ρ`` (on sites) of a local theory."""

    sites: Array
    bonds: Array
    stiffness: Array
    mass: Array
    source: Array
    density: Array
    periodic: bool
    ordering: str

    @property
    def negative_stiffness(self) -> bool:
        return bool(np.any(self.stiffness < 0))

    def summary(self) -> str:
        def rng(a: Array) -> str:
            return f"[{a.min():.4g}, {a.max():.4g}]"

        lines = [
            f"local theory ({self.ordering} ordering, {len(self.sites)} sites, "
            f"{'periodic' if self.periodic else 'open'}):",
            "  ρ ∂_t² f + γ ρ ∂_t f − ∂_s(K ∂_s f) + J f = j",
            f"  K(s) ∈ {rng(self.stiffness)}   J(s) ∈ {rng(self.mass)}   "
            f"j(s) ∈ {rng(self.source)}   ρ(s) ∈ {rng(self.density)}",
        ]
        zero = np.abs(self.stiffness) <= 1e-12 * max(np.abs(self.stiffness).max(), 1e-300)
        if np.any(zero):
            lines.append(f"  {int(zero.sum())} of {zero.size} bonds carry no stiffness")
        if self.negative_stiffness:
            lines.append(
                "  WARNING: negative stiffness K < 0 on "
                f"{int((self.stiffness < 0).sum())} bonds: Lorentz-violating, unstable theory"
            )
        return "\n".join(lines)


def weight_band(
    cost: Cost, periodic: bool, tol: float = 1e-10
) -> tuple[Array, Array, Array, Array] | None:
    """The tridiagonal Hessian of a quadratic cost on the weights of layer 0, or ``None``.

    ``C = ½ φᵀHφ − gᵀφ + const`` is exact for a linear one-layer network, so
    ``H u = ∇C(u) − ∇C(0)`` for any ``u``.  Colouring the sites (``n mod 3``, with one colour
    of its own for each of the last ``n mod 3`` sites, so no two sites within distance 1
    share a colour, periodic wrap included) gives every entry of the band from at most five
    products ``H v_c``, ``v_c`` the indicator of colour ``c``; two seeded random products
    ``H u`` then test that nothing lies outside the band (``|Hu − Tu|_∞ ≤ tol · max|T|``,
    ``T`` the band).  Cost: seven gradients and ``O(n)`` memory, never a dense ``n × n``.

    Returns ``(diagonal, off, g, index)``: ``H_nn``, ``H_{n,n+1}`` (symmetrised; the last one
    wraps to site 0), ``g = −∇C(0)`` and the positions of the weights in θ.
    """
    net = cost.network
    if net.depth != 1 or net.activation.name != "linear":
        raise ValueError("local coefficients need a linear one-layer network (quadratic cost)")
    P = net.params
    index = P.W(np.arange(P.size), 0).ravel()
    n = index.size
    g0 = cost.gradient(P.zeros())[1][index]

    def apply(u: Array) -> Array:
        theta = P.zeros()
        theta[index] = u
        return cost.gradient(theta)[1][index] - g0

    sites = np.arange(n)
    colors = sites % 3
    tail = n % 3
    colors[n - tail :] = 3 + np.arange(tail)
    products = np.array([apply((colors == c).astype(float)) for c in range(colors.max() + 1)])
    nxt = (sites + 1) % n
    diagonal = products[colors, sites]
    off = 0.5 * (products[colors[nxt], sites] + products[colors, nxt])
    bonds = sites if periodic else sites[:-1]
    scale = max(np.abs(diagonal).max(), np.abs(off[bonds]).max(initial=0.0))
    rng = np.random.default_rng(0)
    for _ in range(2):
        u = rng.uniform(-1.0, 1.0, n)
        band = diagonal * u
        band[bonds] += off[bonds] * u[nxt[bonds]]
        band[nxt[bonds]] += off[bonds] * u[bonds]
        if np.abs(apply(u) - band).max() > tol * scale:
            return None
    return diagonal, off, -g0, index


def local_coefficients(
    cost: Cost, dictionary: ScalingDictionary, tol: float = 1e-10
) -> LocalCoefficients | None:
    """The local theory of a linear one-layer network, or None when ``H`` is not tridiagonal.

    Orderings: a single-output ``product`` layer orders its weights by input coordinate
    (Goldstein's chain); a banded layer under the ``linear`` convention uses its line
    positions.  Periodic inputs close the chain.  The band is found by
    :func:`weight_band` in ``O(n)`` memory and seven gradients.
    """
    net, conv = cost.network, dictionary.convention
    layer = net.layers[0]
    if conv.weights[0] == "linear":
        positions = conv.weight_points(net, 0)[..., 0].ravel()
        ordering = "linear"
    elif conv.weights[0] == "product" and layer.n_out == 1 and not layer.banded:
        positions = conv.layers[0].points[:, 0]
        ordering = "input-coordinate"
    else:
        return None
    n = positions.size
    periodic = conv.layers[0].placement == "periodic"
    band = weight_band(cost, periodic, tol) if n >= 3 else None
    if band is None:
        return None
    diagonal, off, g, index = band
    nxt = (np.arange(n) + 1) % n
    bonds = np.arange(n) if periodic else np.arange(n - 1)
    k = -off[bonds]
    mu = diagonal.copy()
    mu[bonds] += off[bonds]
    mu[nxt[bonds]] += off[bonds]
    a_bond = (positions[nxt[bonds]] - positions[bonds]) % 1.0 if periodic else np.diff(positions)
    a_site = np.full(n, float(np.mean(a_bond)))
    delta = conv.input_measure(net, 0).ravel()
    mass_kin = 1.0 / dictionary.rates()[index]
    return LocalCoefficients(
        sites=positions,
        bonds=(positions[bonds] + 0.5 * a_bond) % 1.0
        if periodic
        else positions[:-1] + 0.5 * a_bond,
        stiffness=k * delta[bonds] * delta[nxt[bonds]] * a_bond,
        mass=mu * delta**2 / a_site,
        source=g * delta / a_site,
        density=mass_kin * delta**2 / a_site,
        periodic=periodic,
        ordering=ordering,
    )
