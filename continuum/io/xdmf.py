"""``fields.xdmf``: the lattice fields of ``fields.h5`` as a ParaView time series.

Each weight layer ``m`` whose two coordinate domains are lines becomes a rectilinear grid
(``2DRectMesh``): its fast axis ("X" in ParaView) is the input coordinate ``y``, its slow
axis ("Y") the output coordinate ``x``.  The grid carries the discrete field ``w_ij`` and,
when a continuum was solved, ``w(x_i, y_j)`` and their difference is left to ParaView's
calculator.  Layers touching an image-like (grid) layer are 4-D and are not exported.
"""

from __future__ import annotations

from pathlib import Path

import h5py


def _slab(h5name: str, dataset: str, k: int, nt: int, n1: int, n0: int) -> str:
    return (
        f'<DataItem ItemType="HyperSlab" Dimensions="{n1} {n0}" Type="HyperSlab">'
        f'<DataItem Dimensions="3 3" Format="XML">{k} 0 0 1 1 1 1 {n1} {n0}</DataItem>'
        f'<DataItem Dimensions="{nt} {n1} {n0}" Format="HDF">{h5name}:{dataset}</DataItem>'
        "</DataItem>"
    )


def write_xdmf(path: str | Path) -> Path:
    """Write ``fields.xdmf`` beside ``fields.h5`` for its complete output steps."""
    path = Path(path)
    out = path.with_suffix(".xdmf")
    grids = []
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        nt = len(f["/discrete/times"])
        times = f["/discrete/times"][:nt]
        m = 0
        while f"/discrete/layer{m}/w" in f:
            c_out, c_in = f[f"/discrete/coords/layer{m + 1}"], f[f"/discrete/coords/layer{m}"]
            if c_out.shape[1] == 1 and c_in.shape[1] == 1:
                n1, n0 = c_out.shape[0], c_in.shape[0]
                steps = []
                for k, t in enumerate(times):
                    attrs = [("w_discrete", f"/discrete/layer{m}/w")]
                    if f"/continuum/layer{m}/w_at_lattice" in f:
                        attrs.append(("w_continuum", f"/continuum/layer{m}/w_at_lattice"))
                    items = "".join(
                        f'<Attribute Name="{name}" Center="Node">'
                        f"{_slab(path.name, ds, k, nt, n1, n0)}</Attribute>"
                        for name, ds in attrs
                    )
                    steps.append(
                        f'<Grid Name="layer{m}" GridType="Uniform"><Time Value="{t:.12g}"/>'
                        f'<Topology TopologyType="2DRectMesh" Dimensions="{n1} {n0}"/>'
                        '<Geometry GeometryType="VXVY">'
                        f'<DataItem Dimensions="{n0}" Format="HDF">'
                        f"{path.name}:/discrete/axes/layer{m}</DataItem>"
                        f'<DataItem Dimensions="{n1}" Format="HDF">'
                        f"{path.name}:/discrete/axes/layer{m + 1}</DataItem>"
                        f"</Geometry>{items}</Grid>"
                    )
                grids.append(
                    f'<Grid Name="w{m}" GridType="Collection" CollectionType="Temporal">'
                    + "\n".join(steps)
                    + "</Grid>"
                )
            m += 1
    body = "\n".join(grids)
    out.write_text(
        '<?xml version="1.0"?>\n<Xdmf Version="3.0"><Domain>\n' + body + "\n</Domain></Xdmf>\n"
    )
    return out
