"""Rigid geometry in numpy: point-set fits, plane reflections, spread samples, jaw skinning.

The numpy counterparts of what the data, anatomy and evaluation code shares (the JAX versions
used inside models and losses live in `aim_jax.geometry` and `aim_jax.losses`). Millimetres
throughout; rotations are (3, 3) matrices acting on column vectors, det R = +1; a plane is
(4,) = (unit normal n, offset o), the points x with n . x = o.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

# ---------------------------------------------------------------------------------------------
# Fits from corresponding points.


def similarity_fit(source: np.ndarray, target: np.ndarray,
                   weights: Optional[np.ndarray] = None, scale: bool = True) -> tuple:
  """Least-squares similarity target ~ s R source + t (Umeyama 1991), det R = +1.

  Args:
    source, target: (N, 3) mm corresponding points (N >= 3, not collinear).
    weights: (N,) non-negative weights (default 1).
    scale: fit the scale s; else s = 1 (a rigid fit).
  Returns:
    s (float), R (3, 3), t (3,) mm.
  """
  source = np.asarray(source, np.float64)
  target = np.asarray(target, np.float64)
  w = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
  w = w / w.sum()
  mu_s, mu_t = w @ source, w @ target
  xs, xt = source - mu_s, target - mu_t
  covariance = (xt * w[:, None]).T @ xs
  u, singular, vt = np.linalg.svd(covariance)
  d = np.ones(3)
  d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
  rotation = u @ np.diag(d) @ vt
  s = float((singular * d).sum() / (w @ (xs ** 2).sum(axis=1))) if scale else 1.0
  return s, rotation, mu_t - s * rotation @ mu_s


def rigid_fit(source: np.ndarray, target: np.ndarray,
              weights: Optional[np.ndarray] = None) -> tuple:
  """Weighted least-squares rigid transform target ~ R source + t (`similarity_fit`, s = 1).

  Returns:
    R (3, 3), t (3,) mm.
  """
  _, rotation, translation = similarity_fit(source, target, weights, scale=False)
  return rotation, translation


def apply_similarity(points: np.ndarray, s: float, rotation: np.ndarray,
                     translation: np.ndarray) -> np.ndarray:
  """(..., 3) mm points -> s R p + t."""
  return s * np.asarray(points, np.float64) @ np.asarray(rotation).T + translation


def kabsch(source: np.ndarray, target: np.ndarray, transposed: bool = False) -> tuple:
  """Unweighted least-squares rigid transform target ~ R source + t (Kabsch), det R = +1.

  The same fit as `rigid_fit` without weights, computed from plain means (its results differ
  from `rigid_fit`'s by rounding only).

  Args:
    source, target: (N, 3) mm corresponding points.
    transposed: decompose the cross-covariance S^T T (source by target) instead of T^T S. The
      fit is the same up to rounding (~1e-15); the mirror-plane search uses this form so that
      the planes of existing actors stay bit for bit what they were.
  Returns:
    R (3, 3), t (3,) mm.
  """
  source = np.asarray(source, np.float64)
  target = np.asarray(target, np.float64)
  mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
  if transposed:
    u, _, vt = np.linalg.svd((source - mu_s).T @ (target - mu_t))
    flip = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, flip]) @ u.T
  else:
    u, _, vt = np.linalg.svd((target - mu_t).T @ (source - mu_s))
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
  return rotation, mu_t - rotation @ mu_s


# ---------------------------------------------------------------------------------------------
# Reflection across a plane.


def reflect(points: np.ndarray, plane: np.ndarray) -> np.ndarray:
  """Mirrors (..., 3) mm points across `plane` = (unit normal n, offset o), n . x = o."""
  normal, offset = plane[:3], plane[3]
  distance = points @ normal - offset
  return points - 2.0 * distance[..., None] * normal


def reflect_direction(vectors: np.ndarray, plane: np.ndarray) -> np.ndarray:
  """Mirrors (..., 3) direction vectors (normals) across the plane's orientation."""
  normal = plane[:3]
  return vectors - 2.0 * (vectors @ normal)[..., None] * normal


def reflection_transform(plane: np.ndarray) -> tuple:
  """The reflection across `plane` as an affine map x -> A x + c.

  Returns:
    A (3, 3) = I - 2 n n^T and c (3,) mm = 2 o n.
  """
  normal, offset = plane[:3], plane[3]
  return np.eye(3) - 2.0 * np.outer(normal, normal), 2.0 * offset * normal


# ---------------------------------------------------------------------------------------------
# Spread samples.


def farthest_points(points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
  """(min(count, N),) int64 indices of a farthest-point sample of (N, 3) points.

  Greedy: the first index is drawn by `np.random.default_rng(seed)`, each next one is the point
  farthest from those already chosen (ties: the lowest index).
  """
  points = np.asarray(points, np.float64)
  count = max(0, min(int(count), len(points)))
  chosen = np.empty(count, np.int64)
  if count == 0:
    return chosen
  chosen[0] = np.random.default_rng(seed).integers(len(points))
  distance = np.linalg.norm(points - points[chosen[0]], axis=1)
  for i in range(1, count):
    chosen[i] = np.argmax(distance)
    distance = np.minimum(distance, np.linalg.norm(points - points[chosen[i]], axis=1))
  return chosen


# ---------------------------------------------------------------------------------------------
# The jaw's rigid motion and linear-blend skinning.


def rigid_about_pivot(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                      pivot: np.ndarray) -> np.ndarray:
  """Rigid motions about a pivot: R (x - p) + p + t (inputs used at their own precision).

  Args:
    points: (V, 3) mm.
    rotation: (..., 3, 3) rotations about the pivot.
    translation: (..., 3) mm translations.
    pivot: (3,) mm.
  Returns:
    (..., V, 3) mm moved points.
  """
  return (np.einsum('...ij,vj->...vi', rotation, points - pivot) + pivot
          + translation[..., None, :])


def skin_points(points: np.ndarray, k: np.ndarray, rotation: np.ndarray,
                translation: np.ndarray, pivot: np.ndarray) -> np.ndarray:
  """The AIM jaw skinning in float64: (1 - k) x + k (R (x - p) + p + t).

  The numpy counterpart of `aim_jax.geometry.skin`.

  Args:
    points: (V, 3) mm.
    k: (V,) skinning weights in [0, 1].
    rotation: (..., 3, 3) mandible rotations about the pivot.
    translation: (..., 3) mm mandible translations.
    pivot: (3,) mm.
  Returns:
    (..., V, 3) mm skinned points (float64).
  """
  points = np.asarray(points, np.float64)
  moved = rigid_about_pivot(points, np.asarray(rotation, np.float64),
                            np.asarray(translation, np.float64), np.asarray(pivot, np.float64))
  k = np.asarray(k, np.float64)[:, None]
  return (1.0 - k) * points + k * moved
