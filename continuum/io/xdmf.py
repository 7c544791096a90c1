"""``fields.xdmf``: the lattice fields of ``fields.h5`` as a ParaView time series.

Every weight layer becomes a rectilinear grid (XDMF ``2DRectMesh`` or ``3DRectMesh``) over
the lattice of its weights ``w_ij``: the neurons of every layout sit on a tensor-product
lattice (a line and an index layer on one axis, a grid layer on two, ``j = j₂·n + j₁``,
docs/physics.md), so the axes of ``w[i, j]`` from the fastest-varying index on are the input
coordinates ``y`` (``y₁, y₂`` for a grid) and then the output coordinates ``x`` (``x₁, x₂``).
ParaView shows them as X, Y (and Z): a line × line layer as X = y, Y = x; a grid input layer
feeding a line as X = y₁, Y = y₂, Z = x.  A grid × grid layer has four axes, one more than
XDMF holds: its output side is shown by its neuron index ``i``.  Each output step is one grid
of the temporal collection, carrying the discrete field ``w_discrete`` and, when a continuum
was solved, ``w_continuum = w(x_i, y_j)``, both hyperslabs of the ``(steps, n_out, n_in)``
series of ``fields.h5``; the axes are the ``/discrete/axes/layer{m}`` datasets (the 1-D axis of
a layer: for a grid, that of each of its two coordinates).
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py

from continuum.io import layout

MAX_AXES = 3
"""A rectilinear XDMF grid has at most three axes (``3DRectMesh``)."""


def weight_layers(f: h5py.File) -> list[tuple[str, int]]:
    """The weight layers of a file and their index ``m`` (the layer maps neuron layer ``m``
    to ``m + 1``): ``layer{m}`` and, in a residual network, ``block{k}`` (``m = k + 1``)."""
    found = []
    for name in f[layout.DISCRETE]:
        match = re.fullmatch(r"(layer|block)(\d+)", name)
        if match and layout.discrete_field(name, "w") in f:
            m = int(match[2]) + (match[1] == "block")
            found.append((name, m))
    return sorted(found, key=lambda item: item[1])


def _hdf(h5name: str, dataset: h5py.Dataset) -> str:
    dims = " ".join(str(n) for n in dataset.shape)
    return f'<DataItem Dimensions="{dims}" Format="HDF">{h5name}:{dataset.name}</DataItem>'


def neuron_axes(f: h5py.File, h5name: str, m: int) -> list[tuple[int, str]] | None:
    """The axes of neuron layer ``m``, fastest first, as ``(length, DataItem)``; None when the
    file's axis dataset does not fit the layer (a grid written with its flat coordinate)."""
    coords = f[layout.coordinates(m)]
    axis = f[layout.axis(m)]
    n, dim = coords.shape
    if axis.shape != (round(n ** (1 / dim)),) or axis.shape[0] ** dim != n:
        return None
    return [(axis.shape[0], _hdf(h5name, axis))] * dim


def index_axis(n: int) -> list[tuple[int, str]]:
    """The neuron index ``0 … n-1`` of a layer, as one inline axis."""
    values = " ".join(str(i) for i in range(n))
    return [(n, f'<DataItem Dimensions="{n}" Format="XML">{values}</DataItem>')]


def _slab(h5name: str, dataset: h5py.Dataset, k: int, dims: str) -> str:
    _, n1, n0 = dataset.shape
    return (
        f'<DataItem ItemType="HyperSlab" Dimensions="{dims}" Type="HyperSlab">'
        f'<DataItem Dimensions="3 3" Format="XML">{k} 0 0 1 1 1 1 {n1} {n0}</DataItem>'
        f"{_hdf(h5name, dataset)}</DataItem>"
    )


def layer_grids(f: h5py.File, h5name: str, name: str, m: int, nt: int) -> str | None:
    """The temporal collection of weight layer ``name`` (index ``m``) over its first ``nt``
    output steps, or None when its lattice is not a tensor product of the stored axes."""
    series = [("w_discrete", f[layout.discrete_field(name, "w")])]
    if layout.lattice_field(name, "w") in f:
        series.append(("w_continuum", f[layout.lattice_field(name, "w")]))
    inputs, outputs = neuron_axes(f, h5name, m), neuron_axes(f, h5name, m + 1)
    n_out, n_in = series[0][1].shape[1:]
    if inputs is None or outputs is None or n_in != len(f[layout.coordinates(m)]):
        return None  # e.g. banded weights stored as one column per offset
    if len(inputs) + len(outputs) > MAX_AXES:
        outputs = index_axis(n_out)
    axes = inputs + outputs
    topology = "2DRectMesh" if len(axes) == 2 else "3DRectMesh"
    geometry = "VXVY" if len(axes) == 2 else "VXVYVZ"
    dims = " ".join(str(length) for length, _ in reversed(axes))
    shape = f'<Topology TopologyType="{topology}" Dimensions="{dims}"/>'
    shape += f'<Geometry GeometryType="{geometry}">{"".join(item for _, item in axes)}</Geometry>'
    times = f[layout.DISCRETE_TIMES][:nt]
    steps = []
    for k, t in enumerate(times):
        attributes = "".join(
            f'<Attribute Name="{label}" AttributeType="Scalar" Center="Node">'
            f"{_slab(h5name, ds, k, dims)}</Attribute>"
            for label, ds in series
        )
        steps.append(
            f'<Grid Name="{name}" GridType="Uniform"><Time Value="{t:.12g}"/>'
            f"{shape}{attributes}</Grid>"
        )
    return (
        f'<Grid Name="w_{name}" GridType="Collection" CollectionType="Temporal">\n'
        + "\n".join(steps)
        + "\n</Grid>"
    )


def write_xdmf(path: str | Path) -> Path | None:
    """Write ``fields.xdmf`` beside ``fields.h5`` for its complete output steps; return its
    path, or None (and no file) when no weight layer can be shown."""
    path = Path(path)
    out = path.with_suffix(".xdmf")
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        layers = weight_layers(f)
        nt = min(
            [len(f[layout.DISCRETE_TIMES])]
            + [
                len(f[series])
                for name, _ in layers
                for series in (layout.discrete_field(name, "w"), layout.lattice_field(name, "w"))
                if series in f
            ]
        )
        grids = [grid for name, m in layers if (grid := layer_grids(f, path.name, name, m, nt))]
    if not grids:
        out.unlink(missing_ok=True)
        return None
    out.write_text(
        '<?xml version="1.0"?>\n<Xdmf Version="3.0"><Domain>\n'
        + "\n".join(grids)
        + "\n</Domain></Xdmf>\n"
    )
    return out
