"""Every XDMF file a run writes is valid: ParaView finds a topology, a geometry and its
attributes at every time step, and every HDF5 dataset they point at exists with the declared
dimensions (``fields.xdmf``: continuum/io/xdmf.py; ``stream.xdmf``: DOLFINx's writer)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest

from continuum.app.run import run_experiment
from continuum.settings import parse_config

COMMON = """
[training]
rule = "flow"
dt = 0.01
steps = 4
[output]
every = 2
quiet = true
"""

LAYOUTS = {
    "line-line-line": """
[network]
widths = [6, 5, 4]
activation = "tanh"
[data]
samples = 2
input = "sin(pi*(l+1)*y)"
target = "0.5*cos(pi*(l+1)*x)"
[continuum]
degree = 1
cells = 4
""",
    "grid-line": """
[network]
widths = [16, 5]
activation = "tanh"
[coordinates]
layout = ["grid", "line"]
[data]
samples = 2
input = "sin(pi*(l+1)*y1)*cos(pi*y2) + 0.3"
target = "0.5*cos(pi*(l+1)*x)"
[continuum]
degree = 1
cells = 4
input_layer = "data-span"
scheme = "exponential"
""",
    "line-grid": """
[network]
widths = [5, 9]
activation = "tanh"
[coordinates]
layout = ["line", "grid"]
[data]
samples = 2
input = "sin(pi*(l+1)*y)"
target = "0.5*cos(pi*(l+1)*x1)*x2"
[continuum]
enabled = false
""",
    "grid-grid": """
[network]
widths = [9, 4]
activation = "tanh"
[coordinates]
layout = ["grid", "grid"]
[data]
samples = 2
input = "y1 + y2"
target = "x1*x2"
[continuum]
enabled = false
""",
    "index-line-index": """
[network]
widths = [4, 6, 3]
activation = "tanh"
loss = "cross-entropy"
[coordinates]
layout = ["index", "line", "index"]
[data]
kind = "dataset"
name = "iris"
samples = 30
seed = 0
[init]
weight = ["0.5*cos(pi*x + j)", "cos(pi*y*(1 + i))"]
[continuum]
degree = 1
cells = 16
""",
    "line-point (probes)": """
[network]
widths = [8, 1]
activation = "linear"
bias = false
[coordinates]
placement = "periodic"
[data]
kind = "probes"
[init]
weight = "exp(-40*(y - 0.5)**2)"
[continuum]
degree = 1
cells = 16
""",
    "residual": """
[network]
architecture = "residual"
widths = [4, 5, 3]
depth = 2
activation = "tanh"
[data]
samples = 2
input = "sin(pi*(l+1)*y)"
target = "0.5*cos(pi*(l+1)*x)"
[init]
weight = ["cos(pi*(x - y))", "sin(pi*(x + y))*cos(pi*tau)", "1 + x*y"]
[continuum]
degree = 1
cells = 4
depth_cells = 2
""",
}

TOPOLOGY_AXES = {"2DRectMesh": 2, "3DRectMesh": 3}


def dims(item: ET.Element) -> tuple[int, ...]:
    return tuple(int(n) for n in item.attrib["Dimensions"].split())


def array_of(item: ET.Element, folder: Path) -> np.ndarray:
    """The values of a DataItem: inline XML, an HDF5 dataset (whose shape must be the one
    declared) or a hyperslab of one (start, stride and count inside the dataset)."""
    kind = item.attrib.get("ItemType", "Uniform")
    if kind == "HyperSlab":
        selection, source = list(item)
        start, stride, count = array_of(selection, folder).astype(int).reshape(3, -1)
        data = array_of(source, folder)
        assert np.all(start + stride * (count - 1) < data.shape), "hyperslab out of range"
        index = tuple(slice(a, a + s * c, s) for a, s, c in zip(start, stride, count, strict=True))
        values = data[index]
        assert values.size == np.prod(dims(item))
        return values.reshape(dims(item))
    if item.attrib["Format"] == "XML":
        values = np.array(item.text.split(), dtype=float)
        return values.reshape(dims(item))
    assert item.attrib["Format"] == "HDF"
    name, dataset = item.text.strip().split(":")
    with h5py.File(folder / name, "r") as f:
        assert dataset in f, f"{name}:{dataset} does not exist"
        assert f[dataset].shape == dims(item), (dataset, f[dataset].shape, dims(item))
        return f[dataset][()]


def check_uniform_grid(
    grid: ET.Element, mesh: ET.Element, folder: Path
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """A uniform grid's topology, geometry and attributes agree in size; the coordinates of
    its points (a rectilinear grid's, X fastest) and its attributes."""
    topology, geometry = mesh.find("Topology"), mesh.find("Geometry")
    assert topology is not None and geometry is not None
    kind = topology.attrib["TopologyType"]
    if kind in TOPOLOGY_AXES:
        shape = dims(topology)
        axes = [array_of(item, folder) for item in geometry]
        assert geometry.attrib["GeometryType"] == "VXVYVZ"[: 2 * len(shape)]
        assert len(shape) == TOPOLOGY_AXES[kind] == len(axes)
        assert [len(a) for a in axes] == list(reversed(shape))  # X fastest
        assert all(np.all(np.diff(a) > 0) for a in axes)  # a rectilinear grid
        points = int(np.prod(shape))
        mesh_axes = np.meshgrid(*reversed(axes), indexing="ij")[::-1]
        xyz = np.column_stack([a.ravel() for a in mesh_axes])
    else:  # DOLFINx's unstructured mesh
        cells = array_of(topology.find("DataItem"), folder)
        xyz = array_of(geometry.find("DataItem"), folder)
        assert cells.shape[0] == int(topology.attrib["NumberOfElements"])
        assert cells.min() >= 0 and cells.max() < xyz.shape[0]
        points, xyz = xyz.shape[0], None
    attributes = {}
    for attribute in grid.findall("Attribute"):
        assert attribute.attrib["Center"] == "Node"
        values = array_of(attribute.find("DataItem"), folder)
        assert values.size == points
        attributes[attribute.attrib["Name"]] = values
    assert attributes, "a time step without attributes"
    return xyz, attributes


def check_xdmf(path: Path) -> list[tuple[str, list[float], np.ndarray | None, dict]]:
    """Every temporal collection of the file: its name, times, the point coordinates and the
    attributes of its last step."""
    domain = ET.parse(path).getroot().find("Domain")
    assert domain is not None
    meshes = {
        g.attrib["Name"]: g for g in domain.findall("Grid") if g.attrib["GridType"] == "Uniform"
    }
    collections = [
        g for g in domain.findall("Grid") if g.attrib.get("CollectionType") == "Temporal"
    ]
    assert collections, f"{path.name}: an empty Domain"
    found = []
    for collection in collections:
        steps, times = collection.findall("Grid"), []
        assert steps
        for step in steps:
            times.append(float(step.find("Time").attrib["Value"]))
            mesh = step
            if any(child.tag.endswith("}include") for child in step):
                # DOLFINx's XInclude of the mesh grid's topology and geometry
                (mesh,) = meshes.values()
            xyz, attributes = check_uniform_grid(step, mesh, path.parent)
        assert np.all(np.diff(times) > 0)
        found.append((collection.attrib["Name"], times, xyz, attributes))
    return found


def lattice_points(f: h5py.File, m: int) -> np.ndarray:
    """The point ``(y_j, x_i)`` of every weight ``w[i, j]`` of layer ``m`` in storage order
    (``i`` slow): the input coordinates, then the output ones, or the output neuron's index
    when the two would need more than three axes."""
    y, x = f[f"/discrete/coords/layer{m}"][()], f[f"/discrete/coords/layer{m + 1}"][()]
    if y.shape[1] + x.shape[1] > 3:
        x = np.arange(len(x), dtype=float)[:, None]
    return np.column_stack([np.tile(y, (len(x), 1)), np.repeat(x, len(y), axis=0)])


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_xdmf_of_a_run_points_at_existing_datasets(layout, tmp_path):
    """Each layout's run writes XDMF whose every grid is consistent and whose fields.xdmf
    places every stored weight ``w[i, j]`` at its lattice point ``(y_j, x_i)``."""
    config = parse_config(LAYOUTS[layout] + COMMON)
    run_experiment(config, tmp_path / "run", quiet=True)
    files = sorted((tmp_path / "run").glob("*.xdmf"))
    assert tmp_path / "run" / "fields.xdmf" in files
    layers = {}
    with h5py.File(tmp_path / "run" / "fields.h5", "r") as f:
        times = list(f["/discrete/times"][()])
        for name in f["/discrete"]:
            match = re.fullmatch(r"(layer|block)(\d+)", name)
            if match and f"/discrete/{name}/w" in f:
                m = int(match[2]) + (match[1] == "block")
                continuum = f.get(f"/continuum/{name}/w_at_lattice")
                layers[name] = (
                    lattice_points(f, m),
                    f[f"/discrete/{name}/w"][-1],
                    None if continuum is None else continuum[-1],
                )
    for path in files:
        collections = check_xdmf(path)
        if path.name != "fields.xdmf":
            continue
        assert sorted(name.removeprefix("w_") for name, *_ in collections) == sorted(layers)
        for name, steps, xyz, attributes in collections:
            points, w, w_continuum = layers[name.removeprefix("w_")]
            assert steps == pytest.approx(times, abs=1e-12)
            np.testing.assert_allclose(xyz, points, rtol=0, atol=1e-14)
            np.testing.assert_array_equal(attributes["w_discrete"].ravel(), w.ravel())
            if w_continuum is not None:
                np.testing.assert_array_equal(
                    attributes["w_continuum"].ravel(), w_continuum.ravel()
                )
