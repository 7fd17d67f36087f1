"""Rotations and rigid jaw skinning (jax.numpy; every function is jit- and vmap-safe).

Units: millimetres for points and translations.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

IDENTITY_6D = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], np.float32)


def rotation_from_6d(x: jnp.ndarray) -> jnp.ndarray:
  """6D rotation representation (Zhou et al. 2019) to a rotation matrix.

  The first three numbers are the first column direction, the last three are orthogonalised
  against it (Gram-Schmidt) to give the second column; the third is their cross product.

  Args:
    x: (..., 6).
  Returns:
    (..., 3, 3) rotation matrices (columns b1, b2, b3), det +1.
  """
  a1, a2 = x[..., :3], x[..., 3:]
  b1 = a1 / jnp.linalg.norm(a1, axis=-1, keepdims=True)
  a2 = a2 - jnp.sum(b1 * a2, axis=-1, keepdims=True) * b1
  b2 = a2 / jnp.linalg.norm(a2, axis=-1, keepdims=True)
  b3 = jnp.cross(b1, b2)
  return jnp.stack([b1, b2, b3], axis=-1)


def rotation_to_6d(rotation: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) rotation -> (..., 6): its first two columns."""
  return jnp.concatenate([rotation[..., :, 0], rotation[..., :, 1]], axis=-1)


def rigid_about_pivot(points: jnp.ndarray, rotation: jnp.ndarray, translation: jnp.ndarray,
                      pivot: jnp.ndarray) -> jnp.ndarray:
  """Applies x -> R (x - p) + p + t.

  Args:
    points: (..., N, 3) mm.
    rotation: (..., 3, 3).
    translation: (..., 3) mm.
    pivot: (3,) mm.
  Returns:
    (..., N, 3) mm.
  """
  local = points - pivot
  moved = jnp.einsum('...ij,...nj->...ni', rotation, local)
  return moved + pivot + translation[..., None, :]


def skin(points: jnp.ndarray, weight: jnp.ndarray, rotation: jnp.ndarray,
         translation: jnp.ndarray, pivot: jnp.ndarray) -> jnp.ndarray:
  """Linear blend skinning of the jaw: (1 - k) x + k (R (x - p) + p + t).

  Args:
    points: (N, 3) mm neutral points.
    weight: (N,) jaw skinning weight k in [0, 1].
    rotation: (..., 3, 3) jaw rotations.
    translation: (..., 3) mm jaw translations.
    pivot: (3,) mm.
  Returns:
    (..., N, 3) mm skinned points, one set per transform.
  """
  moved = rigid_about_pivot(points, rotation, translation, pivot)
  k = weight[:, None]
  return (1.0 - k) * points + k * moved


def rotation_angle_deg(r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
  """Angle in degrees of the relative rotation r_a^T r_b; (..., 3, 3) -> (...)."""
  relative = np.einsum('...ji,...jk->...ik', r_a, r_b)
  cos = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
  return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
