"""Meshes of the synthetic head: grids, closed radial surfaces, the mandible slab, the skin grid.

The skin is a (u, v) grid from the forehead to under the chin and ear to ear, split along the
mouth (duplicated vertices: the mouth slit); the cranium is a closed latitude-longitude mesh of
`synthetic_head.cranium_radius`; the mandible a closed slab under the split. Millimetres;
angles in radians unless named `_deg`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from aim_jax.data.actor import Mesh
from aim_jax.data.synthetic_head import (
  CHART_RADIUS_MM,
  CONDYLE_AZIMUTH,
  DEG,
  HEAD_CENTER,
  LIP_GAP_FRACTION,
  MANDIBLE_THICKNESS_MM,
  MOUTH,
  MOUTH_CORNER,
  SKIN_BOTTOM_MARGIN,
  SKIN_HALF_WIDTH,
  SKIN_TOP,
  Identity,
  direction,
  face_bone_radius,
  gauss,
  mandible_bottom,
  split_elevation,
)

# -------------------------------------------------------------------------------------------
# Closed meshes.


def grid_faces(rows: int, cols: int) -> np.ndarray:
  """(2 (rows-1) (cols-1), 3) int32 triangles of a row-major rows x cols grid.

  Counter-clockwise seen from outside when columns run toward +u and rows toward +v; the quads'
  diagonals are mirrored about the middle column, so the triangulation is left-right symmetric.
  """
  r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing='ij')
  a = r * cols + c
  b, d, e = a + 1, a + cols, a + cols + 1
  left = (2 * c + 1 < cols - 1)[..., None]  # Quads left of the middle column.
  first = np.where(left, np.stack([a, b, e], -1), np.stack([a, b, d], -1))
  second = np.where(left, np.stack([a, e, d], -1), np.stack([b, e, d], -1))
  return np.concatenate([first.reshape(-1, 3), second.reshape(-1, 3)]).astype(np.int32)


def sphere_mesh(radius_fn: Callable, step_deg: float) -> Mesh:
  """A closed star-shaped mesh r = radius_fn(u, v) on a latitude-longitude grid.

  Args:
    radius_fn: (u, v) -> (...) mm radius about HEAD_CENTER.
    step_deg: grid spacing in degrees (both angles).
  Returns:
    Mesh with outward-wound triangles; the poles are single vertices.
  """
  num_lon = int(round(360.0 / step_deg))
  num_lat = int(round(180.0 / step_deg)) - 1
  u = np.linspace(-np.pi, np.pi, num_lon, endpoint=False)
  v = np.linspace(-np.pi / 2, np.pi / 2, num_lat + 2)[1:-1]
  vv, uu = np.meshgrid(v, u, indexing='ij')
  points = HEAD_CENTER + radius_fn(uu, vv)[..., None] * direction(uu, vv)
  poles = np.array([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
  pole_points = HEAD_CENTER + radius_fn(np.zeros(2), np.array([-np.pi / 2, np.pi / 2]))[
      :, None] * poles
  vertices = np.concatenate([points.reshape(-1, 3), pole_points])
  south, north = num_lat * num_lon, num_lat * num_lon + 1
  r, c = np.meshgrid(np.arange(num_lat - 1), np.arange(num_lon), indexing='ij')
  a = r * num_lon + c
  b = r * num_lon + (c + 1) % num_lon
  d, e = a + num_lon, b + num_lon
  faces = [np.stack([a, b, e], -1).reshape(-1, 3), np.stack([a, e, d], -1).reshape(-1, 3)]
  c = np.arange(num_lon)
  faces.append(np.stack([np.full(num_lon, south), (c + 1) % num_lon, c], -1))
  top = (num_lat - 1) * num_lon
  faces.append(np.stack([np.full(num_lon, north), top + c, top + (c + 1) % num_lon], -1))
  return Mesh(vertices.astype(np.float32), np.concatenate(faces).astype(np.int32))


def slab_mesh(outer: np.ndarray, inner: np.ndarray) -> Mesh:
  """A closed mesh between two (n, m, 3) grids of the same layout (a thickened sheet).

  Args:
    outer: (n, m, 3) mm outer surface; index 0 runs toward +u, index 1 toward +v (so that
      outward is the side the grid's normals face).
    inner: (n, m, 3) mm inner surface, behind `outer`.
  Returns:
    Mesh: outer and inner grids plus side walls along the four edges, outward wound.
  """
  n, m = outer.shape[:2]
  count = n * m
  # grid_faces takes rows x cols with rows toward +v: transpose to (m, n).
  faces_grid = grid_faces(m, n)
  index = np.arange(count).reshape(m, n)  # index[j, i]: vertex i along u, j along v.
  vertices = np.concatenate([np.swapaxes(outer, 0, 1).reshape(-1, 3),
                             np.swapaxes(inner, 0, 1).reshape(-1, 3)])
  faces = [faces_grid, faces_grid[:, ::-1] + count]
  # Boundary loop, counter-clockwise seen from outside: bottom (+u), right (+v), top (-u),
  # left (-v).
  loop = np.concatenate([index[0, :-1], index[:-1, -1], index[-1, :0:-1], index[:0:-1, 0]])
  nxt = np.roll(loop, -1)
  faces.append(np.stack([loop, loop + count, nxt + count], -1))
  faces.append(np.stack([loop, nxt + count, nxt], -1))
  return Mesh(vertices.astype(np.float32), np.concatenate(faces).astype(np.int32))


def mandible_mesh(identity: Identity, step_deg: float) -> tuple:
  """The mandible slab mesh and its two condyles (2, 3) mm."""
  n = 2 * int(round(CONDYLE_AZIMUTH / DEG / step_deg)) + 1
  m = int(round(55.0 / step_deg)) + 1
  s = np.linspace(-1.0, 1.0, n)
  u = CONDYLE_AZIMUTH * 0.5 * (s - s[::-1])
  t = np.linspace(0.0, 1.0, m)
  uu = np.repeat(u[:, None], m, 1)
  bottom, top = mandible_bottom(uu), split_elevation(uu)
  vv = bottom + t[None, :] * (top - bottom)
  radius = face_bone_radius(identity, uu, vv)
  d = direction(uu, vv)
  width = identity.scale * _mandible_width(uu, vv)
  outer = HEAD_CENTER + radius[..., None] * d
  inner = HEAD_CENTER + (radius - width)[..., None] * d
  condyles = 0.5 * (outer[[0, -1], -1] + inner[[0, -1], -1])
  return slab_mesh(outer, inner), condyles


def _mandible_width(u, v):
  """(...) mm radial thickness of the mandible: ~9 on the body, 12 at the chin."""
  x, y = CHART_RADIUS_MM * u, CHART_RADIUS_MM * v
  return MANDIBLE_THICKNESS_MM + 3.0 * gauss(x, y, 0.0, -78.0, 16.0, 10.0)


# -------------------------------------------------------------------------------------------
# The skin grid.


@dataclasses.dataclass(frozen=True)
class SkinLayout:
  """Parameters of the skin vertices and the skin triangles.

  Attributes:
    u, v: (V,) radians, the bone-surface parameters of each skin vertex.
    lower_lip: (V,) bool, the lower copies of the mouth slit's vertices.
    faces: (F, 3) int32.
    rows, cols: the grid's size (the first rows * cols vertices, row-major, rows toward +v).
    slit_row: the grid row on the lip line.
    slit_cols: (L,) the slit's grid columns; lower copies are vertices rows * cols + [0, L).
  """
  u: np.ndarray
  v: np.ndarray
  lower_lip: np.ndarray
  faces: np.ndarray
  rows: int
  cols: int
  slit_row: int
  slit_cols: np.ndarray

  def mirror_index(self) -> np.ndarray:
    """(V,) exact mirror partner of each vertex (same row, mirrored column, same lip copy)."""
    grid = np.arange(self.rows * self.cols).reshape(self.rows, self.cols)[:, ::-1].ravel()
    position = {int(c): i for i, c in enumerate(self.slit_cols)}
    lips = np.array([position[self.cols - 1 - int(c)] for c in self.slit_cols], np.int64)
    return np.concatenate([grid, self.rows * self.cols + lips]).astype(np.int32)


def skin_layout(resolution: int) -> SkinLayout:
  """The skin's (u, v) grid with the mouth slit, symmetric about u = 0.

  Args:
    resolution: grid vertices per side (rounded up to odd, so a column lies on the midline).
  Returns:
    SkinLayout with about (resolution + 1)^2 vertices.
  """
  if resolution < 8:
    raise ValueError(f'synthetic actor resolution must be >= 8, got {resolution}')
  cols = rows = resolution + 1 - resolution % 2
  a = np.linspace(-1.0, 1.0, cols)
  u_col = SKIN_HALF_WIDTH * 0.5 * (a - a[::-1])  # Exactly antisymmetric.
  bottom = mandible_bottom(u_col) + SKIN_BOTTOM_MARGIN
  slit_row = int(round((rows - 1) * (MOUTH - bottom[cols // 2]) / (SKIN_TOP - bottom[cols // 2])))
  i = np.arange(rows)[:, None]
  upper = MOUTH + (SKIN_TOP - MOUTH) * (i - slit_row) / (rows - 1 - slit_row)
  lower = bottom[None, :] + (MOUTH - bottom[None, :]) * i / slit_row
  v_grid = np.where(i >= slit_row, upper, lower)
  u_grid = np.broadcast_to(u_col, (rows, cols))
  faces = grid_faces(rows, cols)
  slit_cols = np.flatnonzero(np.abs(u_col) < MOUTH_CORNER - 1e-9)
  # Triangles below the slit row use the lower copies of its slit vertices.
  count = rows * cols
  lower_copy = np.full(count, -1)
  lower_copy[slit_row * cols + slit_cols] = count + np.arange(slit_cols.size)
  below = np.all(faces // cols <= slit_row, axis=1)
  remap = faces[below]
  swap = lower_copy[remap] >= 0
  remap[swap] = lower_copy[remap][swap]
  faces[below] = remap
  u = np.concatenate([u_grid.ravel(), u_col[slit_cols]])
  # The lower-lip copies sit a little below the upper ones (lips closed but not coincident, as
  # on a registered scan), so every vertex has its own template point for an implicit model.
  gap = LIP_GAP_FRACTION * (MOUTH - v_grid[slit_row - 1, slit_cols])
  v = np.concatenate([v_grid.ravel(), MOUTH - gap])
  lower_lip = np.zeros(u.size, bool)
  lower_lip[count:] = True
  return SkinLayout(u=u, v=v, lower_lip=lower_lip, faces=faces.astype(np.int32), rows=rows,
                    cols=cols, slit_row=slit_row, slit_cols=slit_cols)
