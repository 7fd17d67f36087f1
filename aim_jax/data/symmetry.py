"""Sagittal mirror plane and per-vertex symmetry map of a neutral face.

Convention (shared with ICT-FaceKit): +x is the subject's left, +y up, +z forward, millimetres.
"""

from __future__ import annotations

import numpy as np
from scipy import spatial

from aim_jax import rigid_np


def mirror_plane(neutral: np.ndarray, iterations: int = 10,
                 icp_iterations: int = 50) -> np.ndarray:
  """Fits the sagittal plane of a roughly symmetric face.

  Starts from the plane x = median(x) and refines it by iterating: mirror, pair each vertex with
  its nearest mirrored neighbour, and refit the plane to the pairs (normal along their mean
  difference, through their mid-points). That alone can settle on a wrong plane when the head is
  rolled (about z) by more than a few degrees, so the result is then polished by rigidly
  registering the mirrored face onto the face (trimmed ICP, `_refine_by_icp`); together they find
  the plane of a face turned by up to about 15 degrees about any axis (45 about y).

  Args:
    neutral: (V, 3) mm.
    iterations: pair-and-refit iterations.
    icp_iterations: ICP iterations of the final polish (0 skips it).
  Returns:
    (4,) plane: unit normal (pointing to +x) and offset.
  """
  neutral = np.asarray(neutral, np.float64)
  plane = np.array([1.0, 0.0, 0.0, np.median(neutral[:, 0])])
  tree = spatial.cKDTree(neutral)
  for _ in range(iterations):
    mirrored = rigid_np.reflect(neutral, plane)
    _, partner = tree.query(mirrored)
    difference = neutral - neutral[partner]
    # Pairs straddling the plane give differences along its normal; orient them to +x first.
    sign = np.sign(difference @ plane[:3])
    keep = np.abs(difference @ plane[:3]) > 1e-6
    if keep.sum() < 3:
      break
    normal = (difference[keep] * sign[keep, None]).mean(axis=0)
    normal /= np.linalg.norm(normal)
    midpoint = 0.5 * (neutral + neutral[partner])
    offset = float(np.median(midpoint @ normal))
    new_plane = np.concatenate([normal, [offset]])
    if np.allclose(new_plane, plane, atol=1e-9):
      break
    plane = new_plane
  if icp_iterations > 0:
    plane = _refine_by_icp(neutral, plane, tree, icp_iterations)
  return plane


def _refine_by_icp(neutral: np.ndarray, plane: np.ndarray, tree: spatial.cKDTree,
                   iterations: int, keep_fraction: float = 0.9) -> np.ndarray:
  """Polishes a mirror plane by trimmed ICP of the mirrored face onto the face.

  The mirror map x -> a x + c starts as the reflection across `plane`; each iteration pairs the
  mapped vertices with their nearest vertices, drops the worst (1 - keep_fraction) of the pairs,
  and composes the map with the best rigid motion of the rest. The final map is (nearly) a
  reflection; its plane has the normal of a's -1 eigenvector.

  Args:
    neutral: (V, 3) float64 mm.
    plane: (4,) starting plane.
    tree: KD-tree of `neutral`.
  Returns:
    (4,) refined plane, its normal on the same side as the starting plane's.
  """
  normal = plane[:3]
  linear, shift = rigid_np.reflection_transform(plane)
  for _ in range(iterations):
    mapped = neutral @ linear.T + shift
    distance, partner = tree.query(mapped)
    keep = distance <= np.quantile(distance, keep_fraction)
    if keep.sum() < 3:
      return plane
    rotation, translation = rigid_np.kabsch(mapped[keep], neutral[partner[keep]],
                                            transposed=True)
    linear, shift = rotation @ linear, rotation @ shift + translation
    if np.abs(rotation - np.eye(3)).max() < 1e-10 and np.abs(translation).max() < 1e-8:
      break
  _, vectors = np.linalg.eigh(0.5 * (linear + linear.T))
  new_normal = vectors[:, 0]  # Eigenvalues ascending: the reflected direction (-1) first.
  if new_normal @ normal < 0:
    new_normal = -new_normal
  return np.concatenate([new_normal, [0.5 * float(new_normal @ shift)]])


def symmetry_map(neutral: np.ndarray, plane: np.ndarray, tolerance_mm: float = 1.0) -> np.ndarray:
  """Each vertex's mirror partner: the vertex nearest to its mirror image.

  Args:
    neutral: (V, 3) mm.
    plane: (4,) mirror plane.
    tolerance_mm: partners farther than this from the mirror image are rejected (-1).
  Returns:
    (V,) int32 partner index, -1 where none lies within tolerance.
  """
  neutral = np.asarray(neutral, np.float64)
  distance, partner = spatial.cKDTree(neutral).query(rigid_np.reflect(neutral, plane))
  return np.where(distance <= tolerance_mm, partner, -1).astype(np.int32)
