"""Layer kinds: each weight layer's discrete and continuum halves, composed in series
(docs/physics.md "Layer kinds in series").

A feed-forward network is a series of weight layers ``m = 0 … M−1``; each layer is of one
*kind*, fixed by its connectivity and its weight convention (``[network] connectivity``,
``[coordinates] weights``):

=============  ============  ===========  ==============================================
kind           connectivity  convention   continuum of ``Σ_j W_ij h_j``
=============  ============  ===========  ==============================================
``dense``      dense         product      ``∫ w(x, y) h(y) dy``, ``w`` in ``V_{m+1} ⊗ V_m``
``unit-cell``  banded        unit-cell    ``Σ_s w_s(x) h(x)``, ``w_s`` in ``V_m = V_{m+1}``
=============  ============  ===========  ==============================================

A kind holds, in its one module, the discrete layer's forward ``Σ_j W_ij h_j``, backward
``Σ_i W_ij d_i`` and weight force ``Σ_l d_i^l h_j^l`` (those of :class:`discrete.network.Layer`)
and their continuum counterparts on the layer's FE spaces:

* :meth:`~LayerKind.inputs`: what the layer reads of its input activities ``h^(m)`` at the
  quadrature points (a dense layer their moments ``η = ∫ ψ h``, a unit-cell layer the values);
* :meth:`~LayerKind.forward`: the pre-activation ``z^(m+1)`` at the output quadrature points;
* :meth:`~LayerKind.backward`: ``∫ w(x, y) δ^(m+1)(x) dx`` (dense) or ``Σ_s w_s δ^(m+1)``
  (unit-cell) at the input quadrature points, before the factor ``σ'(z^(m))``;
* :meth:`~LayerKind.force`: the Riesz image of ``δC/δw^(m)`` as factors ``(R, S)``,
  ``R Sᵀ`` in the layer's coefficient layout (rank ``≤ L``);
* the shifted application ``W + s A Bᵀ`` of the factored RK4 path (``shift``) and the lattice
  values ``w(x_i, y_j)`` or ``w_s(x_i)``.

:func:`serial` composes the kinds of a network; the series driver is
:class:`continuum.fields.galerkin.GalerkinNetwork`, which keeps the MPI distribution of rows or
samples, the loss, the data and the factored-force path for every kind alike.  Every kind's
coefficient matrix is distributed by its rows (:class:`~continuum.fem.row_partition.RowPartition`
of the output factor), so every weight coefficient lives on exactly one rank.

Adding a kind is one module with a :class:`LayerKind` class plus its entry in :data:`KINDS`:
the class names its registry family (``family``) and what it needs of the configuration at its
layer (``requires``), which :mod:`continuum.models.registry` reads; only a kind that changes
the width order of its series names a family the registry does not have yet (one ``Family``
and its ``Entry`` lines).
"""

from __future__ import annotations

from mpi4py import MPI

from continuum.fields.layers.dense import DenseLayer
from continuum.fields.layers.kind import Factors, Inputs, LayerKind, ShiftFactors, Space
from continuum.fields.layers.unitcell import UnitCellLayer
from discrete.network import Network

__all__ = [
    "KINDS",
    "Factors",
    "Inputs",
    "LayerKind",
    "ShiftFactors",
    "Space",
    "kind_name",
    "serial",
]


KINDS: dict[str, type[LayerKind]] = {kind.name: kind for kind in (DenseLayer, UnitCellLayer)}
"""Every layer kind by name."""


def kind_name(connectivity: str, convention: str) -> str:
    """The kind of a weight layer of ``connectivity`` mapped by the weight ``convention``
    (``"none"``: no continuum)."""
    for kind in KINDS.values():
        if (kind.connectivity, kind.convention) == (connectivity, convention):
            return kind.name
    return "none"


def serial(
    network: Network, conventions: tuple[str, ...], spaces: list, comm: MPI.Comm
) -> list[LayerKind]:
    """The kinds of every weight layer of ``network``, in series: layer ``m`` maps the fields
    of ``spaces[m]`` to those of ``spaces[m + 1]``, its rows split over ``comm``."""
    kinds = []
    for m, (layer, convention) in enumerate(zip(network.layers, conventions, strict=True)):
        connectivity = "banded" if layer.banded else "dense"
        name = kind_name(connectivity, convention)
        if name == "none":
            raise ValueError(
                f"weight layer {m}: a {connectivity} layer under the {convention!r} convention "
                "has no continuum layer kind"
            )
        kinds.append(KINDS[name](layer, spaces[m], spaces[m + 1], comm))
    return kinds
