"""Evaluation (DESIGN.md section 8): per-vertex errors and dense anatomy recovery, in mm.

The errors of a sequence (`sequence_stats`) are summarised from blocks of frames, so a sequence
of any length is measured in the memory of a block, with the numbers of the whole array.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

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


_SIGN = np.uint64(1 << 63)
_DIGIT_BITS = 16  # Bits of the order key found per pass of `order_statistics` (4 passes).


def _order_keys(values: np.ndarray) -> np.ndarray:
  """float64 values -> uint64 keys in the same order (negative floats flipped, positive ones
  above them), flat, in one new array."""
  keys = np.array(values, np.float64).reshape(-1).view(np.uint64)
  negative = keys >= _SIGN
  np.invert(keys, out=keys, where=negative)
  np.bitwise_or(keys, _SIGN, out=keys, where=~negative)
  return keys


def _digits(keys: np.ndarray, shift: np.uint64, size: int) -> np.ndarray:
  """The `size`-valued digit of each key above bit `shift`, as int64 (for np.bincount)."""
  digits = keys >> shift
  digits &= np.uint64(size - 1)
  return digits.view(np.int64)


def _key_value(key: int) -> float:
  key = np.uint64(key)
  bits = key ^ _SIGN if key & _SIGN else ~key
  return float(np.array([bits], np.uint64).view(np.float64)[0])


def order_statistics(blocks: Callable[[], Iterable[np.ndarray]], ranks: Sequence[int]
                     ) -> Dict[int, float]:
  """The values at 0-based `ranks` of the sorted values of all blocks, exactly, in the memory
  of a block: four counting passes over the blocks, each finding 16 more bits of every rank's
  value (as a sortable 64-bit key). The values must not be NaN; ranks < their count.

  Args:
    blocks: returns a fresh iterator over arrays (any shapes) each time it is called.
  Returns:
    {rank: value}.
  """
  ranks = sorted({int(r) for r in ranks})
  prefix = {r: 0 for r in ranks}  # The key bits found so far.
  within = {r: r for r in ranks}  # The rank among the values with that prefix.
  size = 1 << _DIGIT_BITS
  for level in range(64 // _DIGIT_BITS):
    shift = np.uint64(64 - _DIGIT_BITS * (level + 1))
    counts = {p: np.zeros(size, np.int64) for p in set(prefix.values())}
    for block in blocks():
      keys = _order_keys(block)
      for p, count in counts.items():
        chosen = keys if level == 0 else keys[(keys >> (shift + np.uint64(_DIGIT_BITS))) == p]
        count += np.bincount(_digits(chosen, shift, size), minlength=size)
    for r in ranks:
      cumulative = np.cumsum(counts[prefix[r]])
      digit = int(np.searchsorted(cumulative, within[r], side='right'))
      within[r] -= int(cumulative[digit - 1]) if digit else 0
      prefix[r] = (prefix[r] << _DIGIT_BITS) | digit
  return {r: _key_value(prefix[r]) for r in ranks}


def sequence_stats(blocks: Callable[[], Iterable[np.ndarray]]
                   ) -> Tuple[Dict[str, float], np.ndarray]:
  """`stats` of a sequence's per-vertex errors given a block of frames at a time, and the mean
  of each frame, in the memory of a block.

  The median and p95 are exactly numpy's (`np.median`, `np.percentile(..., 95)`) of the whole
  array (`order_statistics`, then numpy's own interpolation between the two values); the mean
  is the correctly rounded sum of the per-frame sums (`math.fsum`) over the count, so how the
  frames are split into blocks changes no result. (numpy's pairwise mean of the whole array
  differs from it by rounding only.)

  Args:
    blocks: returns a fresh iterator over (n, R) errors (mm) of consecutive frames each time it
      is called (up to five times): R vertices counted, the same in every block.
  Returns:
    ({'mean', 'median', 'p95', 'count'} as `stats`, (F,) mean error per frame, mm).
  """
  sums, count, width = [], 0, 0
  for block in blocks():
    block = np.asarray(block, np.float64)
    # Row by row: numpy's sum over axis 1 of a 2-D block may order the additions by the
    # block's number of rows (the last bit of a frame's sum then depends on the blocking).
    sums.append(np.array([np.sum(row) for row in block], np.float64))
    count += block.size
    width = block.shape[1]
  sums = np.concatenate(sums) if sums else np.zeros(0)
  with np.errstate(invalid='ignore', divide='ignore'):
    per_frame = sums / width
  if count == 0:
    return stats(np.zeros(0)), per_frame
  if np.isnan(sums).any():
    nan = float('nan')
    return {'mean': nan, 'median': nan, 'p95': nan, 'count': count}, per_frame
  middle = ((count - 1) // 2, count // 2)  # The same rank when count is odd.
  position = (count - 1) * (95 / 100)  # numpy's 'linear' percentile position.
  below = math.floor(position)
  above = min(below + 1, count - 1)
  value = order_statistics(blocks, middle + (below, above))
  return {'mean': math.fsum(sums) / count,
          'median': float(np.mean(np.array([value[r] for r in sorted(set(middle))]))),
          'p95': float(np.quantile(np.array([value[below], value[above]]), position - below)),
          'count': count}, per_frame


def method_jaw_errors(results: Dict[str, Dict], truth_jaw: Optional[Dict],
                      pivot: Optional[np.ndarray]) -> Dict[str, Dict]:
  """`jaw_errors` of every method of `results` with jaws ('jaw_rotation' (F, 3, 3),
  'jaw_translation' (F, 3) mm) against the true ones in `truth_jaw`, about `pivot` (3,) mm;
  {} without true jaws."""
  if truth_jaw is None or 'jaw_rotation' not in truth_jaw:
    return {}
  return {method: jaw_errors(result['jaw_rotation'], result['jaw_translation'],
                             truth_jaw['jaw_rotation'], truth_jaw['jaw_translation'], pivot)
          for method, result in results.items() if 'jaw_rotation' in result}


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
    {'error_mm': {method: `sequence_stats`}, 'per_frame_mm': {method: (F,) mean over the
    region}, 'jaw': {method: jaw errors}}.
  """
  report = {'error_mm': {}, 'per_frame_mm': {}}
  for method, result in results.items():
    errors = vertex_errors(result['frames'], reference)[:, region]
    report['error_mm'][method], report['per_frame_mm'][method] = sequence_stats(
        lambda errors=errors: [errors])
  report['jaw'] = method_jaw_errors(results, truth_jaw, pivot)
  return report
