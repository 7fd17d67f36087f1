"""Performance retargeting between actors (supplementary B.4; DESIGN.md section 7).

A source actor's performance is fitted with the source AIM (`fitting`), giving per frame j a jaw
transform T_j = (R_j, t_j) about the source pivot and per-point coefficients w_j(c). The target
performance is the target AIM composed with the same coefficients and the jaw motion mapped into
the target's pivot frame:
  x_j^t(c) = skin(s0^t(c), k^t(c), T_j^t) + sum_i w_ij(c) e_i^t(c),
so each actor's own anatomy shapes the motion: the jaw rotates about the target's own pivot, the
target's own skinning weights and expression deltas move its own tissue. Coefficients are per
template vertex, so both actors must share the template topology (synthetic actors of one
resolution do, ICT identities do) and the same learning shapes in the same order.

Jaw mapping. A jaw transform about pivot p moves a point x to R (x - p) + p + t. Expressed in a
pivot frame (origin p, axes Q: columns = the frame's x, y, z in world coordinates), the motion is
R_l = Q^T R Q, t_l = Q^T t; in the target's frame (p', Q') it is R' = Q' R_l Q'^T,
t' = s Q' t_l (s: an optional translation scale, e.g. a jaw-size ratio; default 1). With both
actors in the package's canonical head axes (+x left, +y up, +z forward) Q = Q' = I and the
mapping keeps R and t, applied about the target's own pivot.

Baseline, direct delta transfer: x_j^t = neutral^t + (x_j^s - neutral^s).

The retargeting run (loading the models and the source fit, ground truth, report, renders) is
`aim_jax/runs/retarget.py`.
"""

from __future__ import annotations

from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import model as model_lib


class RetargetError(ValueError):
  """A problem with retargeting inputs; the message names the file or folder."""


# -------------------------------------------------------------------------------------------
# Jaw motion between pivot frames.


def world_transform(rotation: np.ndarray, translation: np.ndarray, pivot: np.ndarray) -> tuple:
  """Jaw transforms about a pivot as world rigid motions x -> R x + t_w: t_w = p + t - R p.

  Args:
    rotation: (..., 3, 3); translation: (..., 3) mm; pivot: (3,) mm.
  Returns:
    (rotation (..., 3, 3), world translation (..., 3) mm).
  """
  rotation = np.asarray(rotation, np.float64)
  pivot = np.asarray(pivot, np.float64)
  return rotation, pivot + np.asarray(translation, np.float64) - rotation @ pivot


def about_pivot(rotation: np.ndarray, world_translation: np.ndarray, pivot: np.ndarray) -> tuple:
  """The inverse of `world_transform`: (R, t) with x -> R (x - p) + p + t."""
  rotation = np.asarray(rotation, np.float64)
  pivot = np.asarray(pivot, np.float64)
  return rotation, np.asarray(world_translation, np.float64) - pivot + rotation @ pivot


def map_jaw(rotation: np.ndarray, translation: np.ndarray,
            source_axes: Optional[np.ndarray] = None, target_axes: Optional[np.ndarray] = None,
            translation_scale: float = 1.0) -> tuple:
  """Maps jaw transforms about the source pivot to transforms about the target pivot.

  The motion seen in the source's pivot frame (origin the pivot, axes `source_axes`) is
  reproduced in the target's pivot frame: R' = Q' Q^T R Q Q'^T, t' = s Q' Q^T t.

  Args:
    rotation: (F, 3, 3) source jaw rotations; translation: (F, 3) mm, both about the source
      pivot.
    source_axes, target_axes: (3, 3) rotation matrices whose columns are the pivot frames' axes
      in world coordinates (default identity: the canonical head axes).
    translation_scale: s, multiplies the mapped translation (1: the same slide in mm).
  Returns:
    (rotation (F, 3, 3), translation (F, 3) mm), about the target pivot (float32).
  """
  q_s = np.eye(3) if source_axes is None else np.asarray(source_axes, np.float64)
  q_t = np.eye(3) if target_axes is None else np.asarray(target_axes, np.float64)
  change = q_t @ q_s.T  # Source frame -> target frame.
  rotation = np.asarray(rotation, np.float64)
  translation = np.asarray(translation, np.float64)
  mapped_r = change @ rotation @ change.T
  mapped_t = translation_scale * translation @ change.T
  return mapped_r.astype(np.float32), mapped_t.astype(np.float32)


# -------------------------------------------------------------------------------------------
# Composing the target performance, and the baseline.


def compose_frames(basis: basis_lib.ModelBasis, coefficients: np.ndarray, rotation: np.ndarray,
                   translation: np.ndarray, chunk_frames: int = 25) -> np.ndarray:
  """x_j(c) = skin(s0(c), k(c), T_j) + sum_i w_ij(c) e_i(c) with a model's cached basis.

  Args:
    basis: the (target) model's fields at its V template vertices.
    coefficients: (F, V, S-1) per-point coefficients w_j(c).
    rotation: (F, 3, 3); translation: (F, 3) mm, jaw transforms about the basis's pivot.
    chunk_frames: frames composed per call (memory).
  Returns:
    (F, V, 3) float32 mm.
  """
  coefficients = np.asarray(coefficients, np.float32)
  if coefficients.shape[1:] != (basis.num_vertices, basis.num_coefficients):
    raise ValueError(f'coefficients have shape {coefficients.shape}, expected (F, '
                     f'{basis.num_vertices}, {basis.num_coefficients}) for this model')
  compose = jax.jit(model_lib.compose)
  out = []
  for start in range(0, coefficients.shape[0], chunk_frames):
    end = start + chunk_frames
    frame = {'jaw_rotation': jnp.asarray(rotation[start:end], jnp.float32),
             'jaw_translation': jnp.asarray(translation[start:end], jnp.float32)}
    out.append(np.asarray(compose(basis, jnp.asarray(coefficients[start:end]), frame)))
  return np.concatenate(out).astype(np.float32)


def delta_transfer(source_frames: np.ndarray, source_neutral: np.ndarray,
                   target_neutral: np.ndarray) -> np.ndarray:
  """The baseline: target neutral + (source frame - source neutral); (F, V, 3) mm."""
  source_frames = np.asarray(source_frames, np.float64)
  return (np.asarray(target_neutral, np.float64)[None] + source_frames
          - np.asarray(source_neutral, np.float64)[None]).astype(np.float32)


def retarget_fit(source_fit: Dict[str, np.ndarray], target_basis: basis_lib.ModelBasis,
                 translation_scale: float = 1.0) -> Dict[str, np.ndarray]:
  """The target performance from a source fit (AIM retargeting).

  Args:
    source_fit: 'coefficients' (F, V, S-1), 'jaw_rotation' (F, 3, 3), 'jaw_translation' (F, 3)
      mm about the source pivot (a fit.npz of the 'aim' method).
    target_basis: the target model's basis (same V and S-1).
  Returns:
    'frames' (F, V, 3) mm, 'jaw_rotation', 'jaw_translation' about the target pivot.
  """
  rotation, translation = map_jaw(source_fit['jaw_rotation'], source_fit['jaw_translation'],
                                  translation_scale=translation_scale)
  frames = compose_frames(target_basis, source_fit['coefficients'], rotation, translation)
  return {'frames': frames, 'jaw_rotation': rotation, 'jaw_translation': translation}


# -------------------------------------------------------------------------------------------
# Checks.


def check_compatible(source_info: Dict, target_info: Dict, source_dir: str, target_dir: str):
  """RetargetError unless the two models share the topology and the learning shapes."""
  s, t = source_info['actor'], target_info['actor']
  if s['num_vertices'] != t['num_vertices']:
    raise RetargetError(f'{target_dir}: the target model has {t["num_vertices"]} template '
                        f'vertices but the source ({source_dir}) has {s["num_vertices"]}; '
                        'retargeting needs actors in one topology')
  if list(s['shape_names']) != list(t['shape_names']):
    raise RetargetError(f'{target_dir}: the target model\'s learning shapes '
                        f'{t["shape_names"]} differ from the source\'s ({source_dir}) '
                        f'{s["shape_names"]}; per-point coefficients would mean other '
                        'expressions')
