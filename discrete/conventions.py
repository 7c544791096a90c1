"""Indexing conventions: where each neuron, weight and bias sits in coordinate space.

docs/physics.md "The dictionary".  A convention maps neuron ``(m, i)`` to a coordinate ``x_i ∈ Ω_m``
with a cell measure ``Δx_i`` (the quadrature weight of the Riemann sums), weights ``W_ij^(m)`` to
points of the product domain ``Ω_{m+1} × Ω_m`` (``product``), to component ``s`` of a field at
``x_i`` (``unit-cell``, banded layers), or to one position on a line (``linear``).  The weight
convention is chosen per weight layer (one for the whole network, or one per layer: a network
of dense and banded layers maps its dense layers by ``product`` and its banded ones by
``unit-cell``, docs/physics.md "Layer kinds in series").

Placements on the unit interval:

* ``cell``:     x_i = (i + ½)/N, Δx_i = 1/N (midpoint rule);
* ``vertex``:   x_i = i/(N − 1), Δx_i the trapezoid weights (halved at both ends);
* ``periodic``: x_i = i/N on a circle of length 1, Δx_i = 1/N;
* ``random``:   x_i i.i.d. uniform on [0, 1] (seeded, listed in increasing order: the
  network does not depend on the order of its neurons), Δx_i = 1/N — a Monte Carlo quadrature of the
  same continuum, as an i.i.d. initialisation is (docs/physics.md "Index layers"), with error
  ``O(N^{−1/2})`` in place of the midpoint rule's ``O(N⁻²)``.

A ``grid`` layer of width ``N = n²`` puts neuron ``i = r·n + c`` at ``(x_c, x_r)`` of the
unit square, with measure ``Δx_c Δx_r``.

An ``index`` layer (docs/physics.md "Index layers") is a fixed set of ``d`` features or classes:
neuron ``j`` sits at the integer ``j`` with the counting measure ``Δ = 1`` and is never refined,
whatever the placement of the field layers.  In expressions its variable is the index itself: ``j``
on the input side of a weight, ``i`` on the output side (in place of ``y`` and ``x``).

Field normalisation: ``W_ij = Δy_j w(x_i, y_j)``, biases unscaled, so that
``Σ_j W_ij h_j → ∫ w(x, y) h(y) dy``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network

Array = np.ndarray

PLACEMENTS = ("cell", "vertex", "periodic", "random")
LAYOUTS = ("line", "grid", "index")
WEIGHT_CONVENTIONS = ("product", "unit-cell", "linear")


def placement_1d(
    n: int, placement: str, rng: np.random.Generator | None = None
) -> tuple[Array, Array]:
    """Coordinates and cell measures of ``n`` neurons on [0, 1] for one placement (``rng``
    draws the labels of ``random``)."""
    if placement == "random":
        if rng is None:
            raise ValueError("random placement needs a random generator")
        return np.sort(rng.uniform(0.0, 1.0, n)), np.full(n, 1.0 / n)
    if placement == "cell":
        return (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
    if placement == "periodic":
        return np.arange(n) / n, np.full(n, 1.0 / n)
    if placement == "vertex":
        if n < 2:
            raise ValueError("vertex placement needs at least 2 neurons per layer")
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] *= 0.5
        return np.arange(n) / (n - 1), weights
    raise ValueError(f"unknown placement {placement!r}; choose one of {PLACEMENTS}")


@dataclass(frozen=True)
class LayerCoordinates:
    """Neuron coordinates ``points`` (N, d) and cell measures ``measure`` (N,) of one layer."""

    points: Array
    measure: Array
    layout: str
    placement: str
    shape: tuple[int, ...]

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def size(self) -> int:
        return self.points.shape[0]

    @property
    def spacing(self) -> float:
        """Lattice spacing ``a`` of one coordinate direction (1/N, or 1/(N−1) for vertex; 1 on
        an index layer)."""
        if self.index:
            return 1.0
        n = self.shape[0]
        return 1.0 / (n - 1) if self.placement == "vertex" else 1.0 / n

    @property
    def index(self) -> bool:
        """An index layer: fixed features or classes, counting measure (docs/physics.md "Index
        layers")."""
        return self.layout == "index"

    @property
    def field_dim(self) -> int:
        """Dimension of the coordinate domain in the limit (0 for a point or an index set)."""
        return 0 if self.index or self.size == 1 else self.dim

    @property
    def domain(self) -> str:
        if self.index:
            return f"index set {{0, …, {self.size - 1}}} (counting measure)"
        if self.layout == "grid":
            return "unit square [0,1]²" + (" (periodic)" if self.placement == "periodic" else "")
        if self.size == 1:
            return "a point (one neuron)"
        return "circle of length 1" if self.placement == "periodic" else "interval [0,1]"


def layer_coordinates(
    n: int, placement: str, layout: str = "line", rng: np.random.Generator | None = None
) -> LayerCoordinates:
    """Coordinates of a layer of width ``n`` for a placement and a layout."""
    if layout == "line":
        x, dx = placement_1d(n, placement, rng)
        return LayerCoordinates(x[:, None], dx, layout, placement, (n,))
    if layout == "grid":
        side = round(np.sqrt(n))
        if side * side != n:
            raise ValueError(f"a grid layer needs a square width, got {n}")
        if placement == "random":
            raise ValueError("random placement is defined for line layers")
        x, dx = placement_1d(side, placement)
        rows, cols = np.divmod(np.arange(n), side)
        points = np.column_stack([x[cols], x[rows]])
        return LayerCoordinates(points, dx[cols] * dx[rows], layout, placement, (side, side))
    if layout == "index":
        return LayerCoordinates(
            np.arange(n, dtype=float)[:, None], np.ones(n), layout, "index", (n,)
        )
    raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")


def coordinate_names(layout: str, prefix: str) -> tuple[str, ...]:
    """Names of a layer's variables in expressions, for the input (``prefix = "y"``) or the
    output (``"x"``) side: ``y`` on a line, ``y1, y2`` on a grid, ``j`` (``i``) on an index
    layer."""
    if layout == "index":
        return ("j",) if prefix == "y" else ("i",)
    return (prefix,) if layout == "line" else (f"{prefix}1", f"{prefix}2")


def layer_weights(weights: str | tuple[str, ...], depth: int) -> tuple[str, ...]:
    """The weight convention of each of ``depth`` weight layers from ``[coordinates] weights``
    (one name for all of them, or one per layer)."""
    if isinstance(weights, str):
        return (weights,) * depth
    if len(weights) != depth:
        raise ValueError(f"{len(weights)} weight conventions for {depth} weight layers")
    return tuple(weights)


@dataclass(frozen=True)
class Convention:
    """The discrete → coordinates dictionary of a whole network (docs/physics.md "The
    dictionary")."""

    layers: tuple[LayerCoordinates, ...]
    weights: tuple[str, ...]
    """The weight convention of every weight layer."""

    @classmethod
    def build(
        cls,
        network: Network,
        placement: str = "cell",
        layouts: tuple[str, ...] | None = None,
        weights: str | tuple[str, ...] = "product",
        seed: int = 0,
    ) -> Convention:
        """``weights``: one convention for every weight layer, or one per layer; ``seed``
        draws the labels of a ``random`` placement, layer after layer."""
        layouts = layouts or ("line",) * len(network.widths)
        per_layer = layer_weights(weights, network.depth)
        for m, (kind, layer) in enumerate(zip(per_layer, network.layers, strict=True)):
            if kind not in WEIGHT_CONVENTIONS:
                raise ValueError(f"unknown weight convention {kind!r}; choose {WEIGHT_CONVENTIONS}")
            if kind != "product" and not layer.banded:
                raise ValueError(f"the {kind!r} convention of weight layer {m} needs it banded")
        rng = np.random.default_rng(seed) if placement == "random" else None
        coords = tuple(
            layer_coordinates(n, placement, lay, rng)
            for n, lay in zip(network.widths, layouts, strict=True)
        )
        return cls(coords, per_layer)

    def input_measure(self, network: Network, m: int) -> Array:
        """``Δy`` of every stored weight of layer ``m`` (the field normalisation ``W = Δy w``).

        Under the ``unit-cell`` and ``linear`` conventions a banded layer's ``S`` weights per
        output are components of a field at ``x_i``, not a Riemann sum over inputs, so they
        are not scaled: ``W_is = w_s(x_i)`` (the factor is 1).
        """
        dy = self.layers[m].measure
        layer = network.layers[m]
        if self.weights[m] != "product":
            return np.ones(layer.weight_shape)
        if layer.banded:
            return dy[layer.columns]
        return np.broadcast_to(dy[None, :], layer.weight_shape)

    def weight_points(self, network: Network, m: int) -> Array:
        """Where each stored weight of layer ``m`` sits.

        ``product``: ``(x_i, y_j)`` of shape ``weight_shape + (d_out + d_in,)``;
        ``unit-cell``: ``x_i`` (component ``s`` is the column index), shape ``(N_out, S, d_out)``;
        ``linear``: the position ``(i·S + k + ½)/(N_out·S)`` on a line, shape ``(N_out, S, 1)``.
        """
        layer = network.layers[m]
        x = self.layers[m + 1].points
        if self.weights[m] == "unit-cell":
            return np.broadcast_to(x[:, None, :], (*layer.weight_shape, x.shape[1]))
        if self.weights[m] == "linear":
            n_out, S = layer.weight_shape
            return ((np.arange(n_out * S) + 0.5) / (n_out * S)).reshape(n_out, S, 1)
        return self.product_points(network, m)

    def product_points(self, network: Network, m: int) -> Array:
        """``(x_i, y_j)`` of every stored weight of layer ``m``.

        Shape ``weight_shape + (d_out + d_in,)``.
        """
        layer = network.layers[m]
        x = self.layers[m + 1].points
        y = self.layers[m].points
        if layer.banded:
            yy = y[layer.columns]
        else:
            yy = np.broadcast_to(y[None, :, :], (*layer.weight_shape, y.shape[1]))
        xx = np.broadcast_to(x[:, None, :], (*layer.weight_shape, x.shape[1]))
        return np.concatenate([xx, yy], axis=-1)

    def to_fields(self, network: Network, theta: Array) -> tuple[list[Array], list[Array]]:
        """Field-normalised parameters ``w = W/Δy`` and ``b`` of every layer."""
        w = [
            network.params.W(theta, m) / self.input_measure(network, m)
            for m in range(network.depth)
        ]
        b = [network.params.b(theta, m) for m in range(network.depth)]
        return w, b

    def from_fields(self, network: Network, w: list[Array], b: list[Array]) -> Array:
        """θ from field values: ``W = Δy w``."""
        weights = [w[m] * self.input_measure(network, m) for m in range(network.depth)]
        return network.params.pack(weights, b)
