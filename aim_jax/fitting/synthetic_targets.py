"""Constraints made from a sequence with known ground truth: the held-out synthetic performance
as dense 3D targets, sparse 3D markers and dense 2D landmarks seen by one camera (B.1, B.6).

Markers and landmarks read the frames a block at a time, so the frames may be any array-like
that slices (e.g. `synthetic_performance.PerformanceFrames`, played on demand).
"""

from __future__ import annotations

import dataclasses
from typing import Dict

import jax.numpy as jnp
import numpy as np

from aim_jax import rigid_np
from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import targets as targets_lib


def surface_samples(neutral: np.ndarray, triangles: np.ndarray, region: np.ndarray, count: int,
                    seed: int):
  """`count` spread points on triangles whose corners are all in `region`: (face ids (M,),
  barycentric (M, 3)), the barycentric coordinates random but away from the edges."""
  triangles = np.asarray(triangles)
  inside = np.nonzero(np.asarray(region)[triangles].all(axis=1))[0]
  centroids = np.asarray(neutral)[triangles[inside]].mean(axis=1)
  faces = inside[rigid_np.farthest_points(centroids, count, seed)]
  rng = np.random.default_rng(seed + 1)
  bary = rng.dirichlet(np.full(3, 4.0), size=faces.shape[0])
  return faces, bary


def _per_block(fn, frames, block: int = 100) -> tuple:
  """fn of (n, V, 3) frames, `block` frames at a time; its outputs (a tuple of frame-major
  arrays) concatenated over the blocks. Every output row depends on its own frame only, so the
  result is the same as fn of all frames."""
  parts = [fn(np.asarray(frames[s:s + block])) for s in range(0, len(frames), block)]
  return tuple(np.concatenate(p) for p in zip(*parts))


def dropouts(num_frames: int, count: int, fraction: float, seed: int) -> np.ndarray:
  """(F, M) bool, True where an observation is missing: about `fraction` of them, in runs of
  a few frames (occlusions last), each marker seen in at least one frame."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f'dropout fraction must be in [0, 1), got {fraction}')
  missing = np.zeros((num_frames, count), bool)
  if fraction == 0.0:
    return missing
  rng = np.random.default_rng(seed + 4)
  run = 4  # Mean run length in frames.
  starts = rng.random((num_frames, count)) < fraction / run
  lengths = rng.geometric(1.0 / run, (num_frames, count))
  for f, m in zip(*np.nonzero(starts)):
    missing[f:f + lengths[f, m], m] = True
  missing[rng.integers(num_frames, size=count), np.arange(count)] = False
  return missing


def markers(neutral: np.ndarray, triangles: np.ndarray, region: np.ndarray, frames: np.ndarray,
            count: int = 150, noise_mm: float = 0.0, seed: int = 0,
            dropout: float = 0.0) -> targets_lib.TargetSet:
  """Sparse 3D markers at barycentric points of the ground-truth frames (F, V, 3) mm, with
  optional Gaussian noise (mm, per axis) and dropouts (`dropouts`: missing observations)."""
  faces, bary = surface_samples(neutral, triangles, region, count, seed)
  points = targets_lib.at_barycentric(triangles, faces, bary)
  corners = np.asarray(triangles)[faces]
  values, = _per_block(lambda f: (np.einsum('fmkd,mk->fmd', f[:, corners], bary),), frames)
  rng = np.random.default_rng(seed + 2)
  values = values + noise_mm * rng.standard_normal(values.shape)
  missing = dropouts(values.shape[0], values.shape[1], dropout, seed)
  values[missing] = np.nan
  return targets_lib.make_target_set('markers', points, values, source='synthetic markers')


def frontal_camera(neutral: np.ndarray, distance_mm: float = 600.0,
                   image_size=(1024, 1024), fill: float = 0.8) -> camera_lib.Camera:
  """A camera in front of the face (+z) at `distance_mm` from its centre, focal length chosen
  so the face spans `fill` of the image."""
  neutral = np.asarray(neutral, np.float64)
  center = 0.5 * (neutral.min(axis=0) + neutral.max(axis=0))
  extent = float(np.max(neutral.max(axis=0)[:2] - neutral.min(axis=0)[:2]))
  focal = fill * min(image_size) * distance_mm / extent
  return camera_lib.look_at(center + np.array([0.0, 0.0, distance_mm]), center,
                            focal_px=focal, image_size=image_size)


def _facing(frames: np.ndarray, triangles: np.ndarray, faces: np.ndarray,
            camera: camera_lib.Camera) -> np.ndarray:
  """(F, M) whether each sampled triangle faces the camera in each frame."""
  tri = np.asarray(frames)[:, np.asarray(triangles)[faces]]  # (F, M, 3, 3)
  normal = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
  center = tri.mean(axis=2)
  rotation = np.asarray(camera.rotation, np.float64)
  eye = -rotation.T @ np.asarray(camera.translation, np.float64)
  return np.einsum('fmd,fmd->fm', normal, eye - center) > 0


def landmarks(neutral: np.ndarray, triangles: np.ndarray, region: np.ndarray,
              frames: np.ndarray, camera: camera_lib.Camera, count: int = 1000,
              noise_px: float = 1.0, seed: int = 0) -> targets_lib.TargetSet:
  """Dense 2D landmarks: `count` surface points projected by `camera` with Gaussian pixel noise;
  points on triangles facing away from the camera are invisible in that frame."""
  faces, bary = surface_samples(neutral, triangles, region, count, seed)
  points = targets_lib.at_barycentric(triangles, faces, bary)
  corners = np.asarray(triangles)[faces]
  world, visible = _per_block(lambda f: (np.einsum('fmkd,mk->fmd', f[:, corners], bary),
                                         _facing(f, triangles, faces, camera)), frames)
  pixels = np.asarray(camera_lib.project(camera, jnp.asarray(world, jnp.float32)))
  rng = np.random.default_rng(seed + 3)
  pixels = pixels + noise_px * rng.standard_normal(pixels.shape)
  return targets_lib.make_target_set('landmarks', points, pixels, visible=visible,
                                     camera=camera, source='synthetic landmarks')


@dataclasses.dataclass(frozen=True)
class Condition:
  """What a capture gives a fit: `kind` 'dense' | 'markers' | 'landmarks', the number of
  markers or landmarks, the noise per axis (mm for markers, px for landmarks) and the fraction
  of marker observations missing."""
  kind: str
  count: int = 0
  noise: float = 0.0
  dropout: float = 0.0

  @property
  def name(self) -> str:
    if self.kind == 'dense':
      return 'dense'
    if self.kind == 'landmarks':
      return f'landmarks{self.count}_noise{self.noise:g}px'
    return f'markers{self.count}_noise{self.noise:g}mm_drop{round(100 * self.dropout)}'


def condition_targets(condition: Condition, neutral: np.ndarray, triangles: np.ndarray,
                      region: np.ndarray, frames: np.ndarray, seed: int = 0
                      ) -> Dict[str, targets_lib.TargetSet]:
  """{kind: TargetSet} of ground-truth frames (F, V, 3) mm seen under `condition` (landmarks by
  `frontal_camera`)."""
  if condition.kind == 'dense':
    return {'dense': targets_lib.dense_targets(frames, region)}
  if condition.kind == 'markers':
    return {'markers': markers(neutral, triangles, region, frames, condition.count,
                               condition.noise, seed, condition.dropout)}
  if condition.kind == 'landmarks':
    return {'landmarks': landmarks(neutral, triangles, region, frames, frontal_camera(neutral),
                                   condition.count, condition.noise, seed)}
  raise ValueError(f'condition kind must be dense, markers or landmarks, got {condition.kind!r}')
