"""The terms of L_Model (DESIGN.md section 5) as pure functions of model outputs and targets.

Every term returns a scalar. Lengths are millimetres, so reconstruction and anatomy terms are in
mm^2; normals enter as (1 - cos). Each term is weighted and switched in the learning config
(supplementary Table 3 removes them one at a time).
"""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from aim_jax import geometry


def _masked_mean(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  mask = mask.astype(values.dtype)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def reconstruction(predicted: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """L_R: mean squared distance (mm^2) over all shapes and points.

  Args:
    predicted, target: (S, N, 3) mm.
  """
  return jnp.mean(jnp.sum((predicted - target) ** 2, axis=-1))


def expression_small(deltas: jnp.ndarray) -> jnp.ndarray:
  """Mean squared expression delta (mm^2); deltas (N, S-1, 3).

  Not in the paper. Reconstruction alone cannot tell a jaw motion from an expression delta
  that copies it (E is free), and a SIREN learns E faster than the jaw transforms, so without
  this small prior the learned jaws open a third of the true angle (weight 1e-2: learned jaws
  within 0.4 deg on the demo). With it, the rigid part of each shape goes to T_i and E keeps the
  non-rigid rest.
  """
  return jnp.mean(jnp.sum(deltas ** 2, axis=-1))


def jaw_prior(rotation: jnp.ndarray, translation: jnp.ndarray, probe: jnp.ndarray,
              target: jnp.ndarray, pivot: jnp.ndarray) -> jnp.ndarray:
  """Mean squared distance (mm^2) between mandible points moved by the learned per-shape jaw
  transforms and where the user's fitted jaws put them.

  Not in the paper: an optional prior for actors whose jaws were tracked per shape (e.g. from
  the teeth). Args: rotation (S, 3, 3), translation (S, 3) mm (index 0 the neutral);
  probe (P, 3) mm mandible points; target (S, P, 3) mm; pivot (3,) mm.
  """
  moved = geometry.rigid_about_pivot(probe, rotation, translation, pivot)  # (S, P, 3)
  return jnp.mean(jnp.sum((moved[1:] - target[1:]) ** 2, axis=-1))


def thickness_smoothness(thickness: jnp.ndarray, nearby: jnp.ndarray) -> jnp.ndarray:
  """Mean squared thickness change (mm^2) between points and jittered neighbours; (N,), (N,).

  Not in the paper. Between the sparse constraints nothing else ties the thickness down, and a
  SIREN (w0 = 30) interpolates it with high-frequency patches; this asks for tissue that varies
  slowly over a few millimetres, as real soft tissue does.
  """
  return jnp.mean((thickness - nearby) ** 2)


def bone_smoothness(bone: jnp.ndarray, bone_ahead: jnp.ndarray,
                    bone_behind: jnp.ndarray) -> jnp.ndarray:
  """Mean squared second difference (mm^2) of the bone map c -> B(c) along random directions.

  Not in the paper. Args: bone (N, 3) mm at points c; bone_ahead, bone_behind (N, 3) mm at
  c + j and c - j for a jitter j of a few mm. |B(c+j) + B(c-j) - 2 B(c)|^2 is zero for any
  affine map (a bone that is locally plane-like under the skin, whatever the skin's shape does)
  and grows with the bone surface's bends and folds: a thin-plate prior on the bone alone. (On
  the synthetic actor the true bone's umbrella Laplacian is 4x smaller than the skin's; the
  offset B(c) - c, which follows the skin's detail, is not smooth in this sense.)
  """
  return jnp.mean(jnp.sum((bone_ahead + bone_behind - 2.0 * bone) ** 2, axis=-1))


def normal_smoothness(normal: jnp.ndarray, normal_nearby: jnp.ndarray) -> jnp.ndarray:
  """Mean (1 - cos) between the anatomy normals at points and at jittered copies; (N, 3) each.

  Not in the paper: anatomy normals that turn slowly, as a bone surface's do."""
  return jnp.mean(1.0 - jnp.sum(normal * normal_nearby, axis=-1))


def fold(bone_triangles: jnp.ndarray, skin_normal: jnp.ndarray,
         margin: float = 0.0) -> jnp.ndarray:
  """Fold penalty on the anatomy surface: hinge on flipped bone triangles (dimensionless).

  Not in the paper. The anatomy surface is the bone points joined by the skin's triangles; a
  triangle whose normal turns against the skin triangle's is a fold (the count
  `anatomy_quality.flipped_triangles` reports). Per triangle the signed area ratio
  r = (n_bone . n_skin) / |n_skin|^2 (bone triangle's area projected on the skin triangle's
  plane over the skin triangle's area; 1 for a parallel copy, < 0 flipped) is penalised by
  mean(relu(margin - r)).

  Args:
    bone_triangles: (F, 3, 3) mm bone points at each triangle's corners.
    skin_normal: (F, 3) the skin triangles' area normals divided by their squared length
      (n_skin / |n_skin|^2, per mm^2), precomputed from the neutral.
    margin: the ratio below which a triangle is penalised (0: only flipped ones).
  """
  a, b, c = bone_triangles[:, 0], bone_triangles[:, 1], bone_triangles[:, 2]
  ratio = jnp.sum(jnp.cross(b - a, c - a) * skin_normal, axis=-1)
  return jnp.mean(jnp.maximum(margin - ratio, 0.0))


def depth_prior(thickness: jnp.ndarray, prior: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Masked mean squared difference (mm^2) of the thickness to a prior depth.

  Not in the paper: a weak pull toward the tissue depth the actor's fitted bone meshes give by
  closest point, where the fit is trusted. Args: thickness, prior (N,) mm; mask (N,) 1 where the
  prior applies. 0 when the mask is empty.
  """
  mask = mask.astype(thickness.dtype)
  return jnp.sum((thickness - prior) ** 2 * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def bone_points(bone: jnp.ndarray, bone_target: jnp.ndarray) -> jnp.ndarray:
  """L_A, bone part: mean squared distance (mm^2) to the sparse bone points. (M, 3) each."""
  return jnp.mean(jnp.sum((bone - bone_target) ** 2, axis=-1))


def bone_normals(normal: jnp.ndarray, normal_target: jnp.ndarray) -> jnp.ndarray:
  """L_A, normal part: mean (1 - cos) to the sparse bone normals. (M, 3) unit vectors each."""
  return jnp.mean(1.0 - jnp.sum(normal * normal_target, axis=-1))


def thickness_match(thickness: jnp.ndarray, thickness_target: jnp.ndarray) -> jnp.ndarray:
  """L_D, data part: (d - d*)^2 (mm^2) at the constraint points. (M,), (M,) -> scalar."""
  return jnp.mean((thickness - thickness_target) ** 2)


def thickness_small(thickness: jnp.ndarray, mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """L_D, prior part: mean d^2 (mm^2), keeping unconstrained tissue thin.

  Args:
    thickness: (N,) mm.
    mask: optional (N,) weights (1 where the prior applies, e.g. unconstrained vertices); the
      mean is over the masked points (0 when none is).
  """
  if mask is None:
    return jnp.mean(thickness ** 2)
  mask = mask.astype(thickness.dtype)
  return jnp.sum(thickness ** 2 * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def skinning_prior(skinning: jnp.ndarray, bone_id: jnp.ndarray) -> jnp.ndarray:
  """L_K, data part: k = 0 where the constraint ray hit the cranium (id 0), 1 on the mandible.

  Args:
    skinning: (M,) predicted k at the constraint points.
    bone_id: (M,) int, 0 cranium, 1 mandible.
  """
  return jnp.mean((skinning - bone_id.astype(skinning.dtype)) ** 2)


def skinning_smoothness(skinning: jnp.ndarray, skinning_nearby: jnp.ndarray) -> jnp.ndarray:
  """L_K, smoothness part: squared difference of k between points and jittered copies. (N,)."""
  return jnp.mean((skinning - skinning_nearby) ** 2)


def reflect(points: jnp.ndarray, plane: jnp.ndarray) -> jnp.ndarray:
  """Mirrors (N, 3) points across the plane (n, o): n . x = o."""
  distance = points @ plane[:3] - plane[3]
  return points - 2.0 * distance[:, None] * plane[:3]


def reflect_direction(vectors: jnp.ndarray, plane: jnp.ndarray) -> jnp.ndarray:
  return vectors - 2.0 * (vectors @ plane[:3])[:, None] * plane[:3]


def symmetry(fields: dict, mirrored_fields: dict, plane: jnp.ndarray,
             valid: jnp.ndarray) -> jnp.ndarray:
  """L_Sym: the anatomy at a point's mirror partner is the mirror image of the anatomy there.

  B(mirror(c)) = mirror(B(c)), N likewise as a direction, D and K equal.

  Args:
    fields: 'bone' (N,3), 'normal' (N,3), 'thickness' (N,), 'skinning' (N,) at points c.
    mirrored_fields: the same at the points' mirror partners.
    plane: (4,) mirror plane.
    valid: (N,) bool, points that have a partner.
  """
  bone = _bone_mirror_residual(fields['bone'], mirrored_fields['bone'], plane)
  normal = 1.0 - jnp.sum(reflect_direction(fields['normal'], plane) * mirrored_fields['normal'],
                         axis=-1)
  thickness = (fields['thickness'] - mirrored_fields['thickness']) ** 2
  skinning = (fields['skinning'] - mirrored_fields['skinning']) ** 2
  return _masked_mean(bone + normal + thickness + skinning, valid)


def _bone_mirror_residual(bone: jnp.ndarray, mirrored_bone: jnp.ndarray,
                          plane: jnp.ndarray) -> jnp.ndarray:
  """(N,) |mirror(B(c)) - B(mirror(c))|^2 (mm^2)."""
  return jnp.sum((reflect(bone, plane) - mirrored_bone) ** 2, axis=-1)


def bone_symmetry(bone: jnp.ndarray, mirrored_bone: jnp.ndarray, plane: jnp.ndarray,
                  valid: jnp.ndarray) -> jnp.ndarray:
  """Mirror symmetry of the bone map alone (mm^2): mean |mirror(B(c)) - B(mirror(c))|^2.

  Not in the paper. L_Sym (`symmetry`) asks every anatomy field to be mirror-symmetric at one
  weight; a real skin is not (ICT identities: 0.57 mm mean between mirror partners), and the
  neutral is rebuilt from the anatomy (s0 = B + D N), so a strong L_Sym makes the neutral as
  symmetric as the anatomy and costs reconstruction. Weighting the bone alone leaves D and N
  free to carry the skin's own asymmetry while the bone, which the sparse constraints leave
  free between them, is held to its mirror image.

  Args:
    bone: (N, 3) mm B at points c; mirrored_bone: (N, 3) mm B at their mirror partners.
    plane: (4,) mirror plane; valid: (N,) bool, points that have a partner.
  """
  return _masked_mean(_bone_mirror_residual(bone, mirrored_bone, plane), valid)
