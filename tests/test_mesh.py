"""Mesh triangulation, rasterisation and per-triangle affine maps (reference/mesh.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose.errors import ConfigError, InputError
from reference.mesh import Mesh, rasterize_triangles, signed_areas, triangle_affines, triangulate_mask


def _coverage(mesh: Mesh, mask: np.ndarray) -> tuple[float, float]:
    """(fraction of mask pixels covered by the mesh, fraction of mesh pixels outside the mask)."""
    h, w = mask.shape
    rows, cols, _ = rasterize_triangles(mesh.vertices[mesh.triangles], w, h)
    covered = np.zeros_like(mask, bool)
    covered[rows, cols] = True
    return float((covered & mask).sum() / mask.sum()), float((covered & ~mask).sum() / max(covered.sum(), 1))


def test_rectangle_mesh_covers_mask_exactly():
    mask = np.zeros((60, 120), bool)
    mask[10:50, 20:100] = True
    mesh = triangulate_mask(mask, spacing=6.0)
    inside, outside = _coverage(mesh, mask)
    assert inside > 0.99
    assert outside < 0.01
    assert (signed_areas(mesh.vertices[mesh.triangles]) > 0).all()  # consistent orientation
    assert abs(mesh.area() / (39 * 79) - 1.0) < 0.01  # pixel centres 10..49 x 20..99 (corners cut a little)


def test_concave_mask_has_no_triangles_across_the_gap():
    # a "U": two legs joined at the bottom; Delaunay would bridge the gap between the legs
    mask = np.zeros((100, 100), bool)
    mask[10:90, 10:35] = True
    mask[10:90, 65:90] = True
    mask[70:90, 10:90] = True
    mesh = triangulate_mask(mask, spacing=5.0)
    inside, outside = _coverage(mesh, mask)
    assert inside > 0.97
    assert outside < 0.02
    gap = np.zeros_like(mask)
    gap[12:65, 40:60] = True
    rows, cols, _ = rasterize_triangles(mesh.vertices[mesh.triangles], 100, 100)
    assert not gap[rows, cols].any()


def test_real_character_mask_coverage(data_dir):
    from reference.segmentation import segment_person

    rgb = cv2.cvtColor(cv2.imread(str(data_dir / "ref" / "musepose_ref.png")), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (176, 304), interpolation=cv2.INTER_AREA)
    mask = segment_person(rgb) >= 0.5
    assert 0.1 < mask.mean() < 0.6
    mesh = triangulate_mask(mask, spacing=4.0)
    inside, outside = _coverage(mesh, mask)
    assert inside > 0.95
    assert outside < 0.03
    assert 100 < mesh.num_vertices < 5000


def test_triangulate_rejects_bad_input():
    with pytest.raises(ConfigError):
        triangulate_mask(np.ones((10, 10), bool), spacing=0.5)
    with pytest.raises(InputError):
        triangulate_mask(np.zeros((10, 10), bool))


def test_rasterize_counts_and_painter_order():
    tri = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]])  # right triangle, legs 10
    rows, cols, t = rasterize_triangles(tri, 20, 20)
    assert len(rows) == 66  # lattice points with x, y >= 0 and x + y <= 10
    assert (cols + rows <= 10).all() and (t == 0).all()
    both = np.concatenate([tri, tri + 2.0])
    rows, cols, t = rasterize_triangles(both, 20, 20)
    ids = np.full((20, 20), -1)
    ids[rows, cols] = t
    assert ids[5, 5] == 1 and ids[0, 0] == 0  # the later triangle wins where they overlap
    # clipping: a triangle partly outside the raster
    rows, cols, _ = rasterize_triangles(tri - np.array([5.0, 0.0]), 20, 20)
    assert rows.min() >= 0 and cols.min() >= 0 and len(rows) == 21


def test_triangle_affines_recover_a_known_map():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 50, size=(20, 3, 2))
    m = np.array([[1.2, -0.3, 4.0], [0.5, 0.9, -2.0]])
    dst = src @ m[:, :2].T + m[:, 2]
    aff = triangle_affines(src, dst)
    np.testing.assert_allclose(aff, np.broadcast_to(m, aff.shape), atol=1e-9)
