"""Held-out markers and landmarks: how well a fit predicts observations it did not see (ours).

On a user's own capture there is no ground truth, but there are the observations: hide a fold of
the markers (or landmarks), fit the rest, and measure the fitted face at the hidden ones. k-fold
cross-validation does this for every fold, so every marker is predicted once by a fit that never
saw it (`cross_validate`). Choosing a method's regularisation strength by that error
(`select_by_held_out`) needs nothing but the data.

With Gaussian observation noise of sigma per axis, a held-out error's mean square is the true
error's plus dim * sigma^2 (the held-out observation is itself noisy); `denoised_rms` removes
that, given the noise level the user states (`config.noise`).
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Sequence

import numpy as np

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting.targets import TargetSet

SPARSE_KINDS = ('markers', 'landmarks')


def fold_ids(count: int, folds: int, seed: int) -> np.ndarray:
  """(count,) fold index in [0, folds) of each point: a seeded shuffle dealt round-robin, so
  folds differ in size by at most one. Same (count, folds, seed), same folds."""
  if folds < 2:
    raise ValueError(f'cross-validation needs at least 2 folds, got {folds}')
  if count < folds:
    raise ValueError(f'cannot split {count} points into {folds} folds')
  order = np.random.default_rng(seed).permutation(count)
  ids = np.empty(count, np.int64)
  ids[order] = np.arange(count) % folds
  return ids


def hold_out(target: TargetSet, hidden: np.ndarray) -> TargetSet:
  """The target set with the (M,) bool `hidden` points invisible in every frame."""
  keep = np.asarray(~np.asarray(hidden, bool), np.float32)
  return target.replace(visible=target.visible * keep[None, :])


def predicted_observations(target: TargetSet, frames: np.ndarray) -> np.ndarray:
  """What fitted frames (F, V, 3) mm predict for the target's observations: (F, M, 3) mm, or
  (F, M, 2) px through the target's camera for landmarks."""
  vertices = np.asarray(target.points.vertices)
  weights = np.asarray(target.points.weights)
  points = np.einsum('fmkd,mk->fmd', np.asarray(frames)[:, vertices], weights)
  if target.kind == 'landmarks':
    return np.asarray(camera_lib.project(target.camera, points.astype(np.float32)), np.float64)
  return points


def squared_errors(target: TargetSet, frames: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Squared distances (mm^2, px^2 for landmarks) between the prediction and the visible
  observations of the (M,) bool `points`, flattened over frames."""
  predicted = predicted_observations(target, frames)
  values = np.asarray(target.values, np.float64)
  seen = (np.asarray(target.visible) > 0) & np.asarray(points, bool)[None, :]
  return np.sum((predicted - values) ** 2, axis=-1)[seen]


def denoised_rms(mean_square: float, noise: float, dim: int) -> float:
  """sqrt(max(mean_square - dim * noise^2, 0)): the RMS error against noise-free observations."""
  return float(np.sqrt(max(mean_square - dim * noise * noise, 0.0)))


def summarize(squared: np.ndarray, noise: float, dim: int) -> Dict[str, float]:
  """{'rms', 'mean', 'denoised_rms', 'count'} of squared held-out errors (the target's units)."""
  squared = np.asarray(squared, np.float64)
  mean_square = float(squared.mean()) if squared.size else float('nan')
  return {'rms': float(np.sqrt(mean_square)), 'mean': float(np.sqrt(squared).mean()),
          'denoised_rms': denoised_rms(mean_square, noise, dim), 'count': int(squared.size)}


def cross_validate(fit: Callable[[Dict[str, TargetSet], int], np.ndarray],
                   targets: Mapping[str, TargetSet], folds: int, seed: int,
                   noise: Mapping[str, float]) -> Dict[str, Dict]:
  """k-fold held-out error of a fitting method on its sparse targets.

  Args:
    fit: fit(targets, fold) -> fitted frames (F, V, 3) mm; called once per fold with that fold's
      points invisible (each kind split into `folds` folds by `fold_ids`).
    targets: {kind: TargetSet}; only markers and landmarks are held out (dense targets, if any,
      stay whole in every fold).
    noise: {kind: noise per axis} (mm for markers, px for landmarks) for `denoised_rms`.
  Returns:
    {kind: summarize(...) + {'per_fold_rms': [...]}} over every held-out observation.
  """
  sparse = sorted(k for k in targets if k in SPARSE_KINDS)
  if not sparse:
    raise ValueError('cross-validation needs markers or landmarks among the targets')
  assignment = {k: fold_ids(targets[k].points.count, folds, seed + i)
                for i, k in enumerate(sparse)}
  errors = {k: [] for k in sparse}
  for fold in range(folds):
    train = {k: (hold_out(t, assignment[k] == fold) if k in assignment else t)
             for k, t in targets.items()}
    frames = fit(train, fold)
    for k in sparse:
      errors[k].append(squared_errors(targets[k], frames, assignment[k] == fold))
  out = {}
  for k in sparse:
    dim = 2 if k == 'landmarks' else 3
    out[k] = summarize(np.concatenate(errors[k]), float(noise.get(k, 0.0)), dim)
    out[k]['per_fold_rms'] = [float(np.sqrt(e.mean())) if e.size else float('nan')
                              for e in errors[k]]
  return out


def held_out_score(result: Mapping[str, Dict]) -> float:
  """One number to rank settings by: the mean over kinds of the held-out RMS (markers in mm,
  landmarks in px)."""
  return float(np.mean([r['rms'] for r in result.values()]))


def select_by_held_out(scores: Sequence[float], scales: Sequence[float]) -> int:
  """Index of the lowest held-out score (the first of equal ones, so the choice is
  deterministic); NaN scores never win."""
  scores = np.asarray(scores, np.float64)
  if len(scores) != len(scales) or not len(scores):
    raise ValueError('one held-out score per regularisation scale is needed')
  if not np.isfinite(scores).any():
    raise ValueError('no regularisation scale gave a finite held-out error')
  return int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))
