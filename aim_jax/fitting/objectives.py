"""Fitting losses: data terms for each constraint kind, robust penalties and regularisers.

All data terms are in mm^2: 3D residuals directly, 2D residuals (px) converted to mm at the
point's depth (px * z / f), so one set of weights serves dense, marker and landmark fits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting.targets import TargetSet

ROBUST = ('none', 'huber', 'cauchy')


def robust_penalty(squared: jnp.ndarray, kind: str, scale: float) -> jnp.ndarray:
  """rho(r^2) for squared residuals, in the residual's squared units.

  'none': r^2; 'huber': quadratic below `scale`, linear above; 'cauchy': scale^2 log(1 + r^2 /
  scale^2) (bounded influence, for landmark outliers).
  """
  if kind == 'none':
    return squared
  if kind == 'huber':
    r = jnp.sqrt(squared + 1e-12)
    return jnp.where(r <= scale, squared, 2.0 * scale * r - scale * scale)
  if kind == 'cauchy':
    return scale * scale * jnp.log1p(squared / (scale * scale))
  raise ValueError(f'robust must be one of {ROBUST}, got {kind!r}')


def weighted_mean(values: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def pixel_residuals(predicted: jnp.ndarray, camera, values: jnp.ndarray):
  """Landmark residuals: (..., M, 2) px between the projected points (..., M, 3) mm and the
  observed pixels, and (..., M) the millimetres per pixel at each point's depth (depth over the
  focal length, held constant for the gradient), which makes them mm."""
  pixels = camera_lib.project(camera, predicted)
  depth = jnp.einsum('j,...j->...', camera.rotation[2], predicted) + camera.translation[2]
  return pixels - values, jax.lax.stop_gradient(depth / camera.intrinsics[0, 0])


def data_term(predicted: jnp.ndarray, targets: TargetSet, visible: jnp.ndarray,
              values: jnp.ndarray, robust: str = 'none', robust_scale: float = 1.0,
              camera_offset=None) -> jnp.ndarray:
  """Mean penalty of one constraint kind.

  Args:
    predicted: (F, M, 3) mm, the model at the constrained surface points.
    targets: the TargetSet (its kind and camera are used).
    visible, values: (F, M) and (F, M, D): the (possibly sub-sampled) observations.
    robust, robust_scale: penalty and its scale (px for landmarks, mm otherwise).
    camera_offset: optional (rot6d (6,), translation (3,)) refinement of the extrinsics.
  Returns:
    scalar, mm^2.
  """
  if targets.kind != 'landmarks':
    squared = jnp.sum((predicted - values) ** 2, axis=-1)
    return weighted_mean(robust_penalty(squared, robust, robust_scale), visible)
  camera = targets.camera
  if camera_offset is not None:
    camera = camera_lib.apply_offset(camera, *camera_offset)
  residual, mm_per_px = pixel_residuals(predicted, camera, values)
  squared_px = jnp.sum(residual ** 2, axis=-1)
  return weighted_mean(robust_penalty(squared_px, robust, robust_scale) * mm_per_px ** 2,
                       visible)


def coefficient_magnitude(w: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """Mean squared coefficient over the valid frames; w (F, P, S-1), valid (F,) 0/1."""
  per_frame = jnp.mean(w * w, axis=(1, 2))
  return weighted_mean(per_frame, valid)


def temporal_smoothness(w: jnp.ndarray, raw_transforms: jnp.ndarray,
                        valid: jnp.ndarray) -> jnp.ndarray:
  """Mean squared change between consecutive valid frames of the coefficients (F, P, S-1) and of
  F_T's raw outputs (F, 9|18). Zero for a single frame."""
  if w.shape[0] < 2:
    return jnp.zeros((), w.dtype)
  pair = valid[1:] * valid[:-1]
  change = (jnp.mean((w[1:] - w[:-1]) ** 2, axis=(1, 2))
            + jnp.mean((raw_transforms[1:] - raw_transforms[:-1]) ** 2, axis=1))
  return weighted_mean(change, pair)
