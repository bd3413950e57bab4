"""As-rigid-as-possible shape manipulation with point handles (Igarashi, Moscovich & Hughes, SIGGRAPH 2005).

Two linear least-squares steps, each with a system matrix that depends only on the rest mesh and on where
the handles are bound, so both are factorised once (:func:`scipy.sparse.linalg.factorized`) and every frame
costs a few sparse triangular solves:

1. *similarity step*: every edge ``(i, j)`` with its neighbourhood ``N`` (the edge ends plus the opposite
   vertices of its one or two triangles) should move by the similarity transform that best fits ``N``;
   the transform's coefficients are linear in the unknown positions (``(G^T G)^-1 G^T``), so the error
   ``||(v'_j - v'_i) - T_N (v_j - v_i)||^2`` is a quadratic form.
2. *scale adjustment*: the per-edge transforms of step 1 are normalised to pure rotations and the positions
   re-solved so that every edge matches its rotated rest vector (a graph-Laplacian system, x and y apart).

Handles are arbitrary points (joints), bound to the rest mesh by the barycentric coordinates of their
(nearest) triangle and enforced as heavily weighted soft constraints. numpy / scipy only.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import factorized

from pose.errors import ConfigError, InputError
from reference.mesh import Mesh

logger = logging.getLogger(__name__)

# Weight of the handle constraints relative to the shape terms (soft but effectively hard).
DEFAULT_HANDLE_WEIGHT = 1000.0


def barycentric_binding(mesh: Mesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bind points to the mesh: containing (or nearest) triangle and barycentric coordinates.

    Points outside the mesh get the (extrapolating) coordinates of the triangle whose centroid is nearest,
    so that they still move affinely with it.

    Args:
        mesh: rest mesh.
        points: ``(H, 2)`` positions.

    Returns:
        ``(tri_vertices (H, 3) int, bary (H, 3) float64)``.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    corners = mesh.vertices[mesh.triangles]  # (M, 3, 2)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1 = b - a, c - a
    det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    det = np.where(np.abs(det) > 1e-12, det, 1e-12)
    rel = pts[:, None, :] - a[None]  # (H, M, 2)
    l1 = (rel[..., 0] * v1[None, :, 1] - rel[..., 1] * v1[None, :, 0]) / det
    l2 = (v0[None, :, 0] * rel[..., 1] - v0[None, :, 1] * rel[..., 0]) / det
    l0 = 1.0 - l1 - l2
    outside = -np.minimum(np.minimum(l0, l1), l2)  # <= 0 inside
    centroid_d = np.linalg.norm(pts[:, None, :] - corners.mean(axis=1)[None], axis=2)
    inside = outside <= 1e-9
    key = np.where(inside, -1.0, 0.0) + np.where(inside, 0.0, centroid_d)
    best = np.argmin(key, axis=1)
    rows = np.arange(len(pts))
    bary = np.stack([l0[rows, best], l1[rows, best], l2[rows, best]], axis=1)
    return mesh.triangles[best], bary


def _edge_neighbourhoods(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """Each unique edge with its neighbourhood ``[i, j, l, r]`` (``r = -1`` on the boundary)."""
    t = mesh.triangles
    half = np.concatenate([t[:, [0, 1, 2]], t[:, [1, 2, 0]], t[:, [2, 0, 1]]])  # (i, j, opposite)
    key = np.sort(half[:, :2], axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, half = key[order], half[order]
    uniq, start, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    nb = np.full((len(uniq), 4), -1, np.int64)
    nb[:, :2] = uniq
    nb[:, 2] = half[start, 2]
    two = counts >= 2
    nb[two, 3] = half[start[two] + 1, 2]
    return nb, two


class ARAPDeformer:
    """Two-step ARAP deformation of a 2-D mesh driven by point handles.

    Args:
        mesh: rest mesh (reference positions).
        handles: ``(H, 2)`` rest positions of the handles (H >= 2 for a well-posed similarity step).
        handle_weight: weight of the handle constraints (default 1000).

    Usage::

        arap = ARAPDeformer(mesh, ref_joints)     # factorises once
        verts = arap.deform(new_joints)           # (N, 2) per frame
    """

    def __init__(self, mesh: Mesh, handles: np.ndarray, handle_weight: float = DEFAULT_HANDLE_WEIGHT) -> None:
        handles = np.asarray(handles, np.float64).reshape(-1, 2)
        if len(handles) < 2:
            raise ConfigError(f"ARAP needs at least 2 handles, got {len(handles)}")
        if mesh.num_triangles == 0:
            raise InputError("ARAP mesh has no triangles; check the character mask")
        if not handle_weight > 0:
            raise ConfigError(f"ARAP handle_weight must be > 0, got {handle_weight}")
        self.mesh = mesh
        self.rest = mesh.vertices.copy()
        self.num_handles = len(handles)
        self.w = float(handle_weight)
        n = mesh.num_vertices
        self.handle_tris, self.handle_bary = barycentric_binding(mesh, handles)
        hrows = np.repeat(np.arange(self.num_handles), 3)
        self.C = sp.csr_matrix((self.handle_bary.ravel(), (hrows, self.handle_tris.ravel())),
                               shape=(self.num_handles, n))

        nb, two = _edge_neighbourhoods(mesh)
        self.edges = nb[:, :2]
        self.rest_edges = self.rest[nb[:, 1]] - self.rest[nb[:, 0]]  # (E, 2)
        ne = len(nb)
        # G^+ for each neighbourhood: rows (c, s) as linear functions of the 8 (or 6) neighbour coords
        nbr = np.where(nb >= 0, nb, nb[:, :1])  # pad boundary edges with vertex i (weight zeroed below)
        p = self.rest[nbr]  # (E, 4, 2)
        g = np.zeros((ne, 8, 4))
        g[:, 0::2, 0], g[:, 0::2, 1], g[:, 0::2, 2] = p[..., 0], p[..., 1], 1.0
        g[:, 1::2, 0], g[:, 1::2, 1], g[:, 1::2, 3] = p[..., 1], -p[..., 0], 1.0
        mask_rows = np.ones((ne, 8))
        mask_rows[~two, 6:] = 0.0
        g = g * mask_rows[:, :, None]
        gtg = np.einsum("eki,ekj->eij", g, g)
        self._gpinv = np.linalg.solve(gtg, np.transpose(g, (0, 2, 1)))[:, :2, :]  # (E, 2, 8)
        self._nbr = nbr

        # step 1 matrix: rows 2 per edge over interleaved unknowns (x0, y0, x1, y1, ...)
        ex, ey = self.rest_edges[:, 0], self.rest_edges[:, 1]
        pc, ps = self._gpinv[:, 0, :], self._gpinv[:, 1, :]
        coef_x = -(ex[:, None] * pc + ey[:, None] * ps)  # (E, 8) on neighbour coords
        coef_y = -(ey[:, None] * pc - ex[:, None] * ps)
        cols = np.empty((ne, 8), np.int64)
        cols[:, 0::2] = 2 * nbr
        cols[:, 1::2] = 2 * nbr + 1
        erow = np.arange(ne)
        rows_x = np.concatenate([np.repeat(2 * erow, 8), 2 * erow, 2 * erow])
        cols_x = np.concatenate([cols.ravel(), 2 * nb[:, 1], 2 * nb[:, 0]])
        vals_x = np.concatenate([coef_x.ravel(), np.ones(ne), -np.ones(ne)])
        rows_y = np.concatenate([np.repeat(2 * erow + 1, 8), 2 * erow + 1, 2 * erow + 1])
        cols_y = np.concatenate([cols.ravel(), 2 * nb[:, 1] + 1, 2 * nb[:, 0] + 1])
        vals_y = np.concatenate([coef_y.ravel(), np.ones(ne), -np.ones(ne)])
        e1 = sp.csr_matrix((np.concatenate([vals_x, vals_y]), (np.concatenate([rows_x, rows_y]),
                                                                np.concatenate([cols_x, cols_y]))),
                           shape=(2 * ne, 2 * n))
        c2 = sp.kron(self.C, sp.identity(2), format="csr")  # interleaved handle constraints
        a1 = (e1.T @ e1 + self.w ** 2 * (c2.T @ c2)).tocsc()
        self._solve1 = factorized(a1)
        self._c2t = c2.T.tocsr()

        # step 2 matrix: edge differences, x and y separately
        d = sp.csr_matrix((np.concatenate([np.ones(ne), -np.ones(ne)]),
                           (np.concatenate([erow, erow]), np.concatenate([nb[:, 1], nb[:, 0]]))), shape=(ne, n))
        a2 = (d.T @ d + self.w ** 2 * (self.C.T @ self.C)).tocsc()
        self._solve2 = factorized(a2)
        self._dt = d.T.tocsr()
        self._ct = self.C.T.tocsr()
        logger.debug("ARAP: %d vertices, %d edges, %d handles factorised", n, ne, self.num_handles)

    def deform(self, targets: np.ndarray, scale_adjust: bool = True) -> np.ndarray:
        """Deformed vertex positions for new handle positions.

        Args:
            targets: ``(H, 2)`` new handle positions (finite).
            scale_adjust: run step 2 (rigid edges); ``False`` returns the similarity-step result.

        Returns:
            ``(N, 2)`` float64 vertex positions.
        """
        q = np.asarray(targets, np.float64).reshape(-1, 2)
        if q.shape[0] != self.num_handles or not np.isfinite(q).all():
            raise InputError(f"ARAP targets must be {self.num_handles} finite points, got shape {q.shape}")
        rhs1 = self.w ** 2 * (self._c2t @ q.ravel())
        v1 = self._solve1(rhs1).reshape(-1, 2)
        if not scale_adjust:
            return v1
        # per-edge similarity from step 1, normalised to a rotation
        nbx = v1[self._nbr].reshape(len(self._nbr), 8)
        cs = np.einsum("eij,ej->ei", self._gpinv, nbx)
        norm = np.linalg.norm(cs, axis=1, keepdims=True)
        cs = cs / np.where(norm > 1e-12, norm, 1.0)
        c, s = cs[:, 0], cs[:, 1]
        ex, ey = self.rest_edges[:, 0], self.rest_edges[:, 1]
        tx, ty = c * ex + s * ey, -s * ex + c * ey
        out = np.empty_like(v1)
        out[:, 0] = self._solve2(self._dt @ tx + self.w ** 2 * (self._ct @ q[:, 0]))
        out[:, 1] = self._solve2(self._dt @ ty + self.w ** 2 * (self._ct @ q[:, 1]))
        return out
