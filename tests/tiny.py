"""A tiny hand-made actor for fast tests: a symmetric curved grid over two boxes.

Import it as `from tiny import make_tiny_actor` from a test file in tests/ (pytest puts tests/ on
sys.path), or use the `tiny_actor` fixture from tests/conftest.py.

Layout (mm; +x the subject's left, +y up, +z forward, sagittal plane x = 0):
- skin: a num x num grid, 80 mm wide (x in [-40, 40]) and 100 mm tall (y in [-50, 50]), bulging
  forward (z from 10 at the sides to 35 on the midline); mirror symmetric across x = 0.
- skull: a box x in [-36, 36], y in [-8, 48], z in [-60, 0] behind the upper face.
- mandible: a box x in [-30, 30], y in [-46, -12], z in [-50, -2] behind the lower face.
- pivot: (0, -12, -50), the mid-point of the mandible's posterior-superior edge (what
  `folder.estimate_pivot` finds for this box).
- shapes: neutral, jaw_open (lower face down and back), smile (mouth corners up and out).
- trusted: all but the bottom row; region: all but the leftmost and rightmost columns.
"""

from __future__ import annotations

import numpy as np

from aim_jax.data.actor import Actor, Mesh, make_actor

TINY_PIVOT = np.array([0.0, -12.0, -50.0], np.float32)
TINY_SHAPE_NAMES = ('neutral', 'jaw_open', 'smile')


def grid_faces(rows: int, cols: int) -> np.ndarray:
  """(2 (rows-1) (cols-1), 3) int32 triangles of a row-major rows x cols vertex grid."""
  r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing='ij')
  a = (r * cols + c).ravel()
  b, d, e = a + 1, a + cols, a + cols + 1
  # Counter-clockwise seen from +z (the grid's front), so normals point forward.
  return np.concatenate([np.stack([a, b, e], 1), np.stack([a, e, d], 1)]).astype(np.int32)


def box_mesh(lo, hi) -> Mesh:
  """An axis-aligned box from corner `lo` to corner `hi` (mm): 8 vertices, 12 outward triangles."""
  lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
  corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], np.float32)
  vertices = lo + corners * (hi - lo)
  # Vertex index = 4 i + 2 j + k for corner (i, j, k).
  faces = np.array([[0, 1, 3], [0, 3, 2],   # x = lo
                    [4, 6, 7], [4, 7, 5],   # x = hi
                    [0, 4, 5], [0, 5, 1],   # y = lo
                    [2, 3, 7], [2, 7, 6],   # y = hi
                    [0, 2, 6], [0, 6, 4],   # z = lo
                    [1, 5, 7], [1, 7, 3]],  # z = hi
                   np.int32)
  return Mesh(vertices, faces)


def tiny_neutral(num: int = 12) -> np.ndarray:
  """(num * num, 3) mm neutral skin grid, row-major with rows along y (bottom row first)."""
  u = np.linspace(-1.0, 1.0, num)
  u = 0.5 * (u - u[::-1])  # Exactly antisymmetric, so the grid is exactly mirror symmetric.
  v, u = np.meshgrid(u, u, indexing='ij')
  x = 40.0 * u
  y = 50.0 * v
  z = 10.0 + 25.0 * np.cos(0.5 * np.pi * u) * (1.0 - 0.2 * v * v)
  return np.stack([x, y, z], -1).reshape(-1, 3)


def make_tiny_actor(num: int = 12, name: str = 'tiny') -> Actor:
  """The tiny test actor (deterministic; num * num skin vertices, 3 shapes).

  Args:
    num: grid resolution per side (>= 3).
    name: the actor's name.
  Returns:
    A validated Actor; see the module docstring for its layout.
  """
  neutral = tiny_neutral(num)
  u = neutral[:, 0] / 40.0
  v = neutral[:, 1] / 50.0
  lower = np.clip(-v, 0.0, 1.0)  # 0 on the upper half, 1 at the chin.
  jaw_open = neutral.copy()
  jaw_open[:, 1] -= 12.0 * lower
  jaw_open[:, 2] -= 4.0 * lower
  mouth = np.exp(-((v + 0.4) / 0.25) ** 2)
  smile = neutral.copy()
  smile[:, 0] += 3.0 * u * mouth
  smile[:, 1] += 5.0 * u * u * mouth
  shapes = np.stack([neutral, jaw_open, smile])
  rows = np.arange(num * num) // num
  cols = np.arange(num * num) % num
  return make_actor(
      name=name, shapes=shapes, shape_names=TINY_SHAPE_NAMES, faces=grid_faces(num, num),
      skull=box_mesh([-36.0, -8.0, -60.0], [36.0, 48.0, 0.0]),
      mandible=box_mesh([-30.0, -46.0, -50.0], [30.0, -12.0, -2.0]),
      pivot=TINY_PIVOT, trusted=rows > 0, region=(cols > 0) & (cols < num - 1),
      source=name)
