"""Evaluation (DESIGN.md section 8): per-vertex errors and dense anatomy recovery, in mm."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from aim_jax import rigid_np
from aim_jax.data.actor import GroundTruth
from aim_jax.geometry import rotation_angle_deg


def vertex_errors(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Per-vertex Euclidean distance: (..., V, 3) x2 -> (..., V) mm."""
  return np.linalg.norm(np.asarray(predicted, np.float64) - np.asarray(target, np.float64),
                        axis=-1)


def stats(values: np.ndarray) -> Dict[str, float]:
  """mean, median and 95th percentile of a flat set of values (empty -> NaN)."""
  values = np.asarray(values, np.float64).ravel()
  if values.size == 0:
    return {'mean': float('nan'), 'median': float('nan'), 'p95': float('nan'), 'count': 0}
  return {'mean': float(values.mean()), 'median': float(np.median(values)),
          'p95': float(np.percentile(values, 95)), 'count': int(values.size)}


def error_summary(predicted: np.ndarray, target: np.ndarray,
                  region: Optional[np.ndarray] = None) -> Dict[str, float]:
  """mean / median / p95 per-vertex error (mm) over the region's vertices of every frame.

  Args:
    predicted, target: (T, V, 3) mm.
    region: (V,) bool, the vertices counted (default all).
  """
  errors = vertex_errors(predicted, target)
  if region is not None:
    errors = errors[..., region]
  return stats(errors)


def normal_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Angle (degrees) between (..., 3) directions."""
  a = a / np.linalg.norm(a, axis=-1, keepdims=True)
  b = b / np.linalg.norm(b, axis=-1, keepdims=True)
  return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def anatomy_errors(fields: Dict[str, np.ndarray], ground_truth: GroundTruth,
                   constrained: np.ndarray,
                   region: Optional[np.ndarray] = None) -> Dict[str, Dict]:
  """Dense anatomy recovery against ground truth, on every vertex.

  Args:
    fields: the model's fields at the neutral's vertices: 'bone' (V,3) mm, 'normal' (V,3),
      'thickness' (V,) mm, 'skinning' (V,).
    ground_truth: the actor's ground truth.
    constrained: (V,) bool, vertices that carry a sparse constraint.
    region: (V,) bool, vertices counted (default all).
  Returns:
    {'bone_mm'|'thickness_mm'|'normal_deg'|'skinning': {'all'|'constrained'|'unconstrained':
    stats}}, stats as in `stats` (skinning: absolute weight error).
  """
  per_vertex = {
      'bone_mm': np.linalg.norm(fields['bone'] - ground_truth.bone_point, axis=-1),
      'thickness_mm': np.abs(fields['thickness'] - ground_truth.thickness),
      'normal_deg': normal_angle_deg(fields['normal'], ground_truth.bone_normal),
      'skinning': np.abs(fields['skinning'] - ground_truth.skinning),
  }
  region = np.ones_like(constrained, bool) if region is None else region
  subsets = {'all': region, 'constrained': region & constrained,
             'unconstrained': region & ~constrained}
  return {name: {subset: stats(values[mask]) for subset, mask in subsets.items()}
          for name, values in per_vertex.items()}


def jaw_errors(rotation: np.ndarray, translation: np.ndarray, gt_rotation: np.ndarray,
               gt_translation: np.ndarray, pivot: np.ndarray,
               probe: Optional[np.ndarray] = None) -> Dict[str, Dict]:
  """Jaw transform errors per shape/frame: rotation angle (deg) and displacement error (mm).

  The displacement error is the mean distance between probe points (default: the pivot and
  points 50 mm in front of and below it, roughly the chin) moved by each transform.

  Args:
    rotation, gt_rotation: (T, 3, 3); translation, gt_translation: (T, 3) mm; pivot: (3,) mm.
  """
  if probe is None:
    probe = pivot + np.array([[0.0, 0.0, 0.0], [0.0, -50.0, 60.0], [40.0, -30.0, 30.0],
                              [-40.0, -30.0, 30.0]])
  move = lambda r, t: rigid_np.rigid_about_pivot(probe, r, t, pivot)
  displacement = np.linalg.norm(move(rotation, translation) - move(gt_rotation, gt_translation),
                                axis=-1).mean(axis=-1)
  return {'rotation_deg': stats(rotation_angle_deg(rotation, gt_rotation)),
          'displacement_mm': stats(displacement)}


def sequence_errors(results: Dict[str, Dict], reference: np.ndarray, region: np.ndarray,
                    truth_jaw: Optional[Dict] = None,
                    pivot: Optional[np.ndarray] = None) -> Dict[str, Dict]:
  """Errors of several methods' frame sequences against one reference sequence.

  Args:
    results: {method: {'frames' (F, V, 3) mm, optionally 'jaw_rotation' (F, 3, 3),
      'jaw_translation' (F, 3) mm}}.
    reference: (F, V, 3) mm the frames compared with.
    region: (V,) bool, the vertices counted.
    truth_jaw: optionally 'jaw_rotation' (F, 3, 3) and 'jaw_translation' (F, 3) mm, the true
      jaw transforms about `pivot` (3,) mm; methods with jaws get `jaw_errors` against them.
  Returns:
    {'error_mm': {method: stats}, 'per_frame_mm': {method: (F,) mean over the region},
    'jaw': {method: jaw errors}}.
  """
  report = {'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}
  for method, result in results.items():
    errors = vertex_errors(result['frames'], reference)[:, region]
    report['error_mm'][method] = stats(errors)
    report['per_frame_mm'][method] = errors.mean(axis=1)
    if truth_jaw is not None and 'jaw_rotation' in truth_jaw and 'jaw_rotation' in result:
      report['jaw'][method] = jaw_errors(
          result['jaw_rotation'], result['jaw_translation'], truth_jaw['jaw_rotation'],
          truth_jaw['jaw_translation'], pivot)
  return report
