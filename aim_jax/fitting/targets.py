"""What a fit is asked to match: dense 3D, sparse 3D markers, 2D landmarks.

Every constraint is a set of M surface points, each a fixed combination of K mesh vertices
(`SurfacePoints`: K = 1 for vertices, K = 3 for barycentric points on triangles), with a target
value per frame: a 3D position (dense, markers) or a pixel position seen by a camera (landmarks).
"""

from __future__ import annotations

from typing import Optional

import flax
import jax.numpy as jnp
import numpy as np

from aim_jax.fitting.camera import Camera

KINDS = ('dense', 'markers', 'landmarks')


@flax.struct.dataclass
class SurfacePoints:
  """M points on the mesh: vertices (M, K) int32 vertex ids, weights (M, K) summing to one."""
  vertices: jnp.ndarray
  weights: jnp.ndarray

  @property
  def count(self) -> int:
    return int(self.vertices.shape[0])


def at_vertices(vertex_ids) -> SurfacePoints:
  ids = np.asarray(vertex_ids, np.int32).reshape(-1, 1)
  return SurfacePoints(vertices=jnp.asarray(ids), weights=jnp.ones(ids.shape, jnp.float32))


def at_barycentric(triangles: np.ndarray, face_ids, barycentric) -> SurfacePoints:
  """Points on triangles: face_ids (M,), barycentric (M, 3) -> SurfacePoints with K = 3."""
  face_ids = np.asarray(face_ids, np.int64)
  bary = np.asarray(barycentric, np.float32)
  return SurfacePoints(vertices=jnp.asarray(np.asarray(triangles)[face_ids].astype(np.int32)),
                       weights=jnp.asarray(bary / bary.sum(axis=1, keepdims=True)))


def interpolate(points: SurfacePoints, vertex_values: jnp.ndarray) -> jnp.ndarray:
  """Values at surface points from values at the vertices they use.

  Args:
    vertex_values: (..., M, K, D) the values at points.vertices.
  Returns:
    (..., M, D).
  """
  return jnp.sum(vertex_values * points.weights[..., None], axis=-2)


@flax.struct.dataclass
class TargetSet:
  """One kind of constraint over F frames.

  Attributes:
    kind: 'dense' | 'markers' | 'landmarks' (static).
    points: the M surface points constrained.
    values: (F, M, 3) mm positions, or (F, M, 2) px for landmarks.
    visible: (F, M) float 1 where the value is observed, 0 where it is missing.
    camera: the camera for landmarks (None otherwise).
  """
  kind: str = flax.struct.field(pytree_node=False)
  points: SurfacePoints
  values: jnp.ndarray
  visible: jnp.ndarray
  camera: Optional[Camera] = None

  @property
  def num_frames(self) -> int:
    return int(self.values.shape[0])

  def frames(self, index) -> 'TargetSet':
    return self.replace(values=self.values[index], visible=self.visible[index])


def make_target_set(kind: str, points: SurfacePoints, values, visible=None,
                    camera: Optional[Camera] = None, source: str = 'targets') -> TargetSet:
  """A validated TargetSet; ValueError with a one-line message naming `source` on bad input."""
  if kind not in KINDS:
    raise ValueError(f'{source}: unknown target kind {kind!r} (expected one of {KINDS})')
  values = np.asarray(values, np.float32)
  dim = 2 if kind == 'landmarks' else 3
  if values.ndim != 3 or values.shape[1:] != (points.count, dim):
    raise ValueError(f'{source}: {kind} values must have shape (frames, {points.count}, {dim}),'
                     f' got {values.shape}')
  if visible is None:
    visible = np.all(np.isfinite(values), axis=-1)
  visible = np.asarray(visible, np.float32)
  if visible.shape != values.shape[:2]:
    raise ValueError(f'{source}: visibility must have shape {values.shape[:2]}, '
                     f'got {visible.shape}')
  bad = ~np.isfinite(values).all(axis=-1) & (visible > 0)
  if bad.any():
    frame = int(np.nonzero(bad)[0][0])
    raise ValueError(f'{source}: NaN or infinite {kind} values in frame {frame} '
                     f'({int(bad.sum())} points); mark them invisible or remove them')
  if kind == 'landmarks' and camera is None:
    raise ValueError(f'{source}: landmarks need a camera')
  values = np.where(visible[..., None] > 0, values, 0.0).astype(np.float32)
  return TargetSet(kind=kind, points=points, values=jnp.asarray(values),
                   visible=jnp.asarray(visible), camera=camera)


def dense_targets(frames: np.ndarray, region=None, source: str = 'targets') -> TargetSet:
  """Dense 3D targets in the actor's topology: frames (F, V, 3) mm; `region` (V,) bool limits
  the constrained vertices (default all)."""
  frames = np.asarray(frames, np.float32)
  ids = np.arange(frames.shape[1]) if region is None else np.nonzero(np.asarray(region))[0]
  return make_target_set('dense', at_vertices(ids), frames[:, ids], source=source)

