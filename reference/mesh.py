"""Triangle meshes of a character mask, and a vectorised triangle rasteriser.

A mask is triangulated by sampling its outer contour every ``spacing`` pixels, adding a hexagonal grid of
interior points (kept at least ``spacing / 2`` from the contour), running a Delaunay triangulation
(:class:`scipy.spatial.Delaunay`) and dropping the triangles that leave the mask (centroid or an edge
midpoint outside it) -- a cheap stand-in for a constrained triangulation that follows concavities such as
the gap between arm and body.

Coordinates follow :mod:`pose.sequence`: ``x`` = column, ``y`` = row, pixel ``(i, j)`` at ``(x=j, y=i)``.
numpy / scipy / OpenCV only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from pose.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

# Triangles thinner than this (area in pixels^2) are dropped as degenerate.
MIN_TRIANGLE_AREA = 1e-3


@dataclass
class Mesh:
    """A 2-D triangle mesh.

    Attributes:
        vertices: ``(N, 2)`` float64 ``x, y`` pixel positions.
        triangles: ``(M, 3)`` int32 vertex indices, counter-clockwise in image coordinates
            (positive signed area with ``+y`` down, see :func:`signed_areas`).
    """

    vertices: np.ndarray
    triangles: np.ndarray

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 2)
        self.triangles = np.asarray(self.triangles, dtype=np.int32).reshape(-1, 3)
        if len(self.triangles) and (self.triangles.min() < 0 or self.triangles.max() >= len(self.vertices)):
            raise InputError("mesh triangles index vertices that do not exist; rebuild the mesh")

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_triangles(self) -> int:
        return len(self.triangles)

    def edges(self) -> np.ndarray:
        """``(E, 2)`` int array of unique undirected edges (``i < j``)."""
        t = self.triangles
        e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
        e.sort(axis=1)
        return np.unique(e, axis=0)

    def area(self) -> float:
        """Total area in pixels^2."""
        return float(np.abs(signed_areas(self.vertices[self.triangles])).sum())

    def subset(self, triangle_mask: np.ndarray) -> Mesh:
        """The mesh made of the selected triangles, unreferenced vertices removed."""
        tris = self.triangles[np.asarray(triangle_mask, bool)]
        used, inverse = np.unique(tris, return_inverse=True)
        return Mesh(self.vertices[used], inverse.reshape(-1, 3))


def signed_areas(tri_xy: np.ndarray) -> np.ndarray:
    """Signed areas of triangles.

    Args:
        tri_xy: ``(M, 3, 2)`` triangle corners.

    Returns:
        ``(M,)`` signed areas (positive for the orientation :class:`Mesh` uses).
    """
    a, b, c = tri_xy[:, 0], tri_xy[:, 1], tri_xy[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _resample_contour(contour: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` pixels of arc length along a closed contour ``(P, 2)``."""
    pts = contour.astype(np.float64)
    closed = np.vstack([pts, pts[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    total = float(seg.sum())
    if total <= 0:
        return pts[:1]
    n = max(3, int(np.ceil(total / spacing)))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, total, n, endpoint=False)
    x = np.interp(targets, s, closed[:, 0])
    y = np.interp(targets, s, closed[:, 1])
    return np.stack([x, y], axis=1)


def triangulate_mask(mask: np.ndarray, spacing: float = 8.0, min_component_area: float | None = None) -> Mesh:
    """Triangulate the nonzero region of ``mask``.

    Args:
        mask: ``(H, W)`` bool/uint8 mask (nonzero = inside).
        spacing: target edge length in pixels (default 8). Smaller gives a denser mesh.
        min_component_area: connected components smaller than this (pixels) are ignored
            (default ``spacing ** 2``).

    Returns:
        A :class:`Mesh` covering the mask (vertices on its contour and inside).
    """
    if not spacing > 1.0:
        raise ConfigError(f"mesh spacing must be > 1 pixel, got {spacing}")
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if m.ndim != 2:
        raise InputError(f"mask to triangulate must be 2-D, got shape {np.shape(mask)}")
    min_area = spacing * spacing if min_component_area is None else float(min_component_area)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    boundary = [_resample_contour(c[:, 0, :], spacing) for c in contours if cv2.contourArea(c) >= min_area]
    if not boundary:
        raise InputError("mask to triangulate is empty (or only specks); check the character mask")

    # interior: hexagonal grid, away from the contour
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    h, w = m.shape
    row_step = spacing * np.sqrt(3.0) / 2.0
    ys = np.arange(row_step / 2.0, h, row_step)
    interior = []
    for r, y in enumerate(ys):
        xs = np.arange((spacing / 2.0) * (r % 2), w, spacing)
        interior.append(np.stack([xs, np.full_like(xs, y)], axis=1))
    grid = np.concatenate(interior)
    gi = np.clip(np.round(grid).astype(int), 0, [w - 1, h - 1])
    grid = grid[dist[gi[:, 1], gi[:, 0]] >= 0.5 * spacing]

    points = np.concatenate(boundary + [grid])
    points = np.unique(np.round(points, 3), axis=0)
    if len(points) < 3:
        raise InputError("mask to triangulate is too small for a mesh; lower mesh spacing")
    tris = Delaunay(points).simplices.astype(np.int32)

    # keep triangles whose centroid and edge midpoints lie in the (slightly grown) mask
    grown = cv2.dilate(m, np.ones((3, 3), np.uint8))
    corners = points[tris]
    probes = [corners.mean(axis=1)] + [(corners[:, i] + corners[:, (i + 1) % 3]) / 2.0 for i in range(3)]
    keep = np.ones(len(tris), bool)
    for i, p in enumerate(probes):
        pi = np.clip(np.round(p).astype(int), 0, [w - 1, h - 1])
        keep &= (m if i == 0 else grown)[pi[:, 1], pi[:, 0]] > 0
    area = signed_areas(corners)
    keep &= np.abs(area) > MIN_TRIANGLE_AREA
    tris = tris[keep]
    flip = area[keep] < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    mesh = Mesh(points, tris).subset(np.ones(len(tris), bool))
    logger.debug("mesh: %d vertices, %d triangles (spacing %.1f px)", mesh.num_vertices, mesh.num_triangles, spacing)
    return mesh


def rasterize_triangles(tri_xy: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels covered by triangles, vectorised (no per-triangle Python loop).

    A pixel ``(i, j)`` is covered when the point ``(x=j, y=i)`` lies inside or on a triangle. Pixels are
    returned triangle by triangle in input order, so assigning per-pixel values with numpy fancy indexing
    lets later triangles overwrite earlier ones (painter's order).

    Args:
        tri_xy: ``(M, 3, 2)`` float triangle corners in pixels.
        width, height: raster size; pixels outside are clipped away.

    Returns:
        ``(rows, cols, tri)``: three ``(P,)`` int arrays (row, column, triangle index of each covered pixel).
    """
    t = np.asarray(tri_xy, dtype=np.float64)
    empty = (np.zeros(0, np.intp),) * 3
    if t.size == 0:
        return empty
    ys = t[:, :, 1]
    y0 = np.maximum(np.ceil(ys.min(axis=1)), 0).astype(np.int64)
    y1 = np.minimum(np.floor(ys.max(axis=1)), height - 1).astype(np.int64)
    nrows = np.maximum(y1 - y0 + 1, 0)
    total_rows = int(nrows.sum())
    if total_rows == 0:
        return empty
    tri_of_row = np.repeat(np.arange(len(t)), nrows)
    starts = np.cumsum(nrows) - nrows
    row = y0[tri_of_row] + (np.arange(total_rows) - np.repeat(starts, nrows))
    yr = row.astype(np.float64)

    # intersect the scanline with the three edges; the span is [min x, max x] of the valid crossings
    xl = np.full(total_rows, np.inf)
    xr = np.full(total_rows, -np.inf)
    tt = t[tri_of_row]
    for k in range(3):
        a, b = tt[:, k], tt[:, (k + 1) % 3]
        dy = b[:, 1] - a[:, 1]
        lo, hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
        ok = (yr >= lo) & (yr <= hi)
        flat = ok & (np.abs(dy) < 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = a[:, 0] + (yr - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
        x = np.where(flat, a[:, 0], x)
        xl = np.where(ok, np.minimum(xl, x), xl)
        xr = np.where(ok, np.maximum(xr, x), xr)
        xl = np.where(flat, np.minimum(xl, b[:, 0]), xl)
        xr = np.where(flat, np.maximum(xr, b[:, 0]), xr)
    c0 = np.maximum(np.ceil(xl - 1e-9), 0)
    c1 = np.minimum(np.floor(xr + 1e-9), width - 1)
    valid = np.isfinite(c0) & np.isfinite(c1)
    c0 = np.where(valid, c0, 0).astype(np.int64)
    c1 = np.where(valid, c1, -1).astype(np.int64)
    ncols = np.maximum(c1 - c0 + 1, 0)
    total = int(ncols.sum())
    if total == 0:
        return empty
    span_of_px = np.repeat(np.arange(total_rows), ncols)
    span_start = np.cumsum(ncols) - ncols
    cols = c0[span_of_px] + (np.arange(total) - np.repeat(span_start, ncols))
    return row[span_of_px], cols, tri_of_row[span_of_px]


def triangle_affines(src_xy: np.ndarray, dst_xy: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps taking ``src`` triangles onto ``dst`` triangles, vectorised.

    Args:
        src_xy: ``(M, 3, 2)`` source corners.
        dst_xy: ``(M, 3, 2)`` destination corners.

    Returns:
        ``(M, 2, 3)`` matrices ``A`` with ``dst = A @ [x, y, 1]`` (degenerate source triangles give zeros).
    """
    s = np.asarray(src_xy, np.float64)
    d = np.asarray(dst_xy, np.float64)
    e1, e2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    safe = np.where(np.abs(det) > 1e-12, det, np.inf)
    # inverse of [e1 e2] (columns)
    inv = np.stack([np.stack([e2[:, 1], -e2[:, 0]], 1), np.stack([-e1[:, 1], e1[:, 0]], 1)], 1) / safe[:, None, None]
    f1, f2 = d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]
    lin = np.stack([f1, f2], axis=2) @ inv  # (M, 2, 2)
    trans = d[:, 0] - np.einsum("mij,mj->mi", lin, s[:, 0])
    return np.concatenate([lin, trans[:, :, None]], axis=2)
