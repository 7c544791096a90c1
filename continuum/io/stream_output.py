"""``stream.xdmf``: the neuron field ``s(t, τ, x)`` of a residual network and its adjoint
``p(t, τ, x)``, for ParaView.

docs/physics.md "Depth as a coordinate": the stream is a genuine field on the rectangle ``[0,1]_τ ×
[0,1]_x``.  The depth continuum records it in ``fields.h5`` (``/continuum/stream/s``) on the grid of
the τ-cell ends and the stream space's nodes (:class:`continuum.fields.residual.ResidualModel`);
this module puts that grid on a DOLFINx quadrilateral mesh of the rectangle (one cell per grid
interval) and writes degree-1 Lagrange functions per sample, ``s_sample{l}`` and ``p_sample{l}``
(the adjoint, ``/continuum/stream/p``), at every complete output step, with DOLFINx's XDMF writer
(``stream.xdmf`` and ``stream.h5`` beside ``fields.h5``). The nodal values are the recorded ones: in
``x`` the stream's own Lagrange coefficients, in ``τ`` the RK4 solution at the cell ends.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from dolfinx import fem, io, mesh
from mpi4py import MPI

from continuum.io import layout

Array = np.ndarray


def rectangle_function_space(tau: Array, x: Array) -> tuple[fem.FunctionSpace, Array, Array]:
    """P1 on the quadrilateral mesh of ``[0,1]²`` with vertices at the grid ``tau × x`` (both
    increasing; the stream space's nodes are Gauss–Lobatto–Legendre points, not uniform from
    degree 3), and the grid indices ``(i_τ, i_x)`` of every DOF: the mesh is built on the
    uniform grid of the same counts and its vertices are moved to the recorded one."""
    if np.any(np.diff(tau) <= 0) or np.any(np.diff(x) <= 0):
        raise ValueError("the recorded (τ, x) grid of the stream is not increasing")
    cells = [len(tau) - 1, len(x) - 1]
    unit = [np.array([0.0, 0.0]), np.array([1.0, 1.0])]
    msh = mesh.create_rectangle(MPI.COMM_SELF, unit, cells, mesh.CellType.quadrilateral)

    def grid_indices(points: Array) -> tuple[Array, Array]:
        index = np.rint(points[:, :2] * np.array(cells)).astype(int)
        return index[:, 0], index[:, 1]

    V = fem.functionspace(msh, ("Lagrange", 1))
    i_tau, i_x = grid_indices(V.tabulate_dof_coordinates())
    g_tau, g_x = grid_indices(msh.geometry.x)
    msh.geometry.x[:, 0], msh.geometry.x[:, 1] = tau[g_tau], x[g_x]
    return V, i_tau, i_x


def write_stream_xdmf(path: str | Path) -> Path | None:
    """Write ``stream.xdmf`` beside ``fields.h5`` when the file holds a stream (a residual
    network's continuum); return its path, or None when there is no stream."""
    path = Path(path)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        if layout.STREAM_S not in f:
            return None
        nt = len(f[layout.DISCRETE_TIMES])
        times = f[layout.CONTINUUM_TIMES][:nt]
        stored = {"s": layout.STREAM_S, "p": layout.STREAM_P}
        fields = {name: f[path][:nt] for name, path in stored.items()}
        tau, x = f[layout.STREAM_TAU][()], f[layout.STREAM_X][()]
    V, i_tau, i_x = rectangle_function_space(tau, x)
    samples = fields["s"].shape[1]
    functions = {
        (name, l): fem.Function(V, name=f"{name}_sample{l}")
        for name in fields
        for l in range(samples)
    }
    out = path.with_name("stream.xdmf")
    with io.XDMFFile(MPI.COMM_SELF, str(out), "w") as xdmf:
        xdmf.write_mesh(V.mesh)
        for k, t in enumerate(times):
            for (name, l), u in functions.items():
                u.x.array[:] = fields[name][k, l][i_tau, i_x]
                xdmf.write_function(u, float(t))
    return out
