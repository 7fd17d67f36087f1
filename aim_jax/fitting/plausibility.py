"""Plausibility of fitting targets against the model they are fitted with.

Checked before any fitting, each a `TargetError` on one line naming the targets and what to fix:
- units: the spread of the observed 3D points about their centroid against the model's neutral
  at the same surface points (a ratio near 1e-3 or 1e-1 means metres or centimetres read as mm);
- observations: every frame must see at least `MIN_VISIBLE` points of each kind (all-NaN
  markers would fit nothing and return the rest pose);
- cameras: the model's neutral at the landmark points must lie in front of the camera, and its
  projection must be about the size of the observed landmarks (zero or wrong intrinsics, a
  camera behind the face or far away).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting.io import TargetError
from aim_jax.fitting.targets import TargetSet

MIN_VISIBLE = 3
SCALE_RANGE = (0.5, 2.0)  # Accepted target / model spread ratio.


def _rest_points(target: TargetSet, neutral: np.ndarray) -> np.ndarray:
  """(M, 3) mm: the model's neutral at the target's surface points."""
  vertices = np.asarray(target.points.vertices)
  weights = np.asarray(target.points.weights)
  return np.einsum('mk,mkd->md', weights, neutral[vertices])


def _spread(points: np.ndarray, visible: np.ndarray) -> float:
  """RMS distance of the visible points of every frame to their frame's centroid."""
  total, count = 0.0, 0
  for frame, seen in zip(points, visible > 0):
    if seen.sum() >= 2:
      p = frame[seen]
      total += float(np.sum((p - p.mean(axis=0)) ** 2))
      count += int(seen.sum())
  return float(np.sqrt(total / max(count, 1)))


def _units_hint(ratio: float) -> str:
  for unit, scale in (('m', 1e-3), ('cm', 1e-1), ('mm', 1.0)):
    if 0.5 * scale <= ratio <= 2.0 * scale:
      return f' (they look like {unit} read as mm: give their units)'
  return ''


def check_targets(targets: Dict[str, TargetSet], neutral: np.ndarray, source: str = 'targets'):
  """Raises TargetError when targets cannot be meant for a model with this neutral (V, 3) mm."""
  neutral = np.asarray(neutral, np.float64)
  for kind, target in sorted(targets.items()):
    visible = np.asarray(target.visible)
    seen = (visible > 0).sum(axis=1)
    if seen.min() < MIN_VISIBLE:
      frames = np.flatnonzero(seen < MIN_VISIBLE)
      raise TargetError(f'{source}: {len(frames)} of {len(seen)} frames see fewer than '
                        f'{MIN_VISIBLE} {kind} points (first: frame {frames[0]}, '
                        f'{seen[frames[0]]} visible); drop those frames or check for NaN')
    rest = _rest_points(target, neutral)
    if kind == 'landmarks':
      _check_camera(target, rest, visible, source)
      continue
    model_spread = _spread(rest[None], np.ones((1, len(rest))))
    ratio = _spread(np.asarray(target.values, np.float64), visible) / max(model_spread, 1e-9)
    if not SCALE_RANGE[0] <= ratio <= SCALE_RANGE[1]:
      raise TargetError(f'{source}: the {kind} points spread {ratio:.3g} times as wide as the '
                        f'model at the same points{_units_hint(ratio)}')


def _check_camera(target: TargetSet, rest: np.ndarray, visible: np.ndarray, source: str):
  cam = target.camera
  intrinsics = np.asarray(cam.intrinsics, np.float64)
  if not (intrinsics[0, 0] > 0 and intrinsics[1, 1] > 0):
    raise TargetError(f'{source}: camera intrinsics have focal lengths '
                      f'{intrinsics[0, 0]:g}, {intrinsics[1, 1]:g} px; they must be positive')
  depth = rest @ np.asarray(cam.rotation, np.float64)[2] + float(np.asarray(cam.translation)[2])
  if np.median(depth) <= 0 or (depth <= 0).mean() > 0.05:
    raise TargetError(f'{source}: the face is behind the camera ({100 * (depth <= 0).mean():.0f}% '
                      'of the landmark points at negative depth); check camera_rotation and '
                      'camera_translation (world -> camera, OpenCV axes)')
  projected = np.asarray(camera_lib.project(cam, rest.astype(np.float32)), np.float64)
  projected_spread = _spread(projected[None], np.ones((1, len(rest))))
  ratio = _spread(np.asarray(target.values, np.float64), visible) / max(projected_spread, 1e-9)
  if not 0.25 <= ratio <= 4.0:
    raise TargetError(f'{source}: the landmarks spread {ratio:.3g} times as wide as the model '
                      'seen through the camera; check the intrinsics and the camera distance')
