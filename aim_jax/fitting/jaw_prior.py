"""A prior tying each fitted frame's jaw to the frame's blend of the learning shapes' jaws (ours).

Given the skin alone, the jaw transform T_j of the fitting model trades against the expression
deltas: a little more jaw rotation and a little less of the deltas that open the mouth fit the
same skin, most of all from sparse markers. The learned model holds a jaw T_i for every
learning shape, and the global blendshapes of those shapes (the GBS baseline, whose deltas
s_i - s_0 include each shape's jaw motion) are solved per frame in milliseconds; a frame with
GBS coefficients b_j moves its mandible (to first order) by the same blend of the shapes'
mandible motions, as a blendshape rig's jaw does. The prior is the squared distance (mm^2)
between the mandible moved by F_T's jaw and the mandible moved by that blend,

  jaw_blend = mean_j mean_m || T_j(p_m) - p_m - sum_i b_ij (T_i(p_m) - p_m) ||^2,

over `num_probes` points p_m of the actor's mandible. The blend is fixed per frame before the
fit (AIM's own coefficients would not do: the jaw motion is in F_T, not in the deltas e_i, so
AIM's coefficients of the jaw shapes are barely seen by the skin), and linear in the mandible's
displacements (not in the rotations): a jaw half-way to a learning shape's is the chord, not
the arc, of its motion. Weighted by `loss.jaw_blend`; zero for a frame whose jaw is its blend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from aim_jax import geometry
from aim_jax.models import aim


@flax.struct.dataclass
class JawPrior:
  """What the prior needs of a learned model.

  Attributes:
    probes: (M, 3) mm points of the actor's mandible (neutral pose).
    shape_motion: (S-1, M, 3) mm, each learning shape's jaw displacement of the probes,
      T_i(p) - p.
    pivot: (3,) mm jaw pivot.
  """
  probes: jnp.ndarray
  shape_motion: jnp.ndarray
  pivot: jnp.ndarray


def probe_points(mandible_vertices: np.ndarray, count: int) -> np.ndarray:
  """`count` mandible vertices spread over the bone: every n-th vertex in the mesh's order,
  (count, 3) mm (all of them when there are fewer)."""
  vertices = np.asarray(mandible_vertices, np.float32)
  if vertices.ndim != 2 or vertices.shape[1] != 3 or not len(vertices):
    raise ValueError(f'mandible vertices must be (N, 3), got {vertices.shape}')
  if len(vertices) <= count:
    return vertices
  return vertices[np.linspace(0, len(vertices) - 1, count).round().astype(int)]


def make_jaw_prior(params, mandible_vertices: np.ndarray, pivot: np.ndarray,
                   num_probes: int = 64) -> JawPrior:
  """The prior of a learned AIM (its learned per-shape jaws, `aim.jaw_transforms`)."""
  rotation, translation = aim.jaw_transforms(params)
  probes = jnp.asarray(probe_points(mandible_vertices, num_probes))
  pivot = jnp.asarray(pivot, jnp.float32)
  moved = geometry.rigid_about_pivot(jnp.broadcast_to(probes, (rotation.shape[0] - 1,)
                                                      + probes.shape),
                                     rotation[1:], translation[1:], pivot)
  return JawPrior(probes=probes, shape_motion=moved - probes[None], pivot=pivot)


class JawModel(NamedTuple):
  """What a fit needs for the prior: the learned jaws (`JawPrior`) and the GBS basis of the
  same shapes, whose per-frame solve (`baselines.fit_gbs`) gives each frame's blend."""
  prior: JawPrior
  gbs_basis: Any


def blend_term(prior: JawPrior, rotation: jnp.ndarray, translation: jnp.ndarray,
               blend: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """The prior (mm^2): mean over valid frames and probes.

  Args:
    rotation: (F, 3, 3), translation: (F, 3) mm, F_T's jaws about the pivot.
    blend: (F, S-1) each frame's coefficients of the learning shapes (fixed: no gradient).
    valid: (F,) 1 for real frames, 0 for padding.
  """
  probes = jnp.broadcast_to(prior.probes, (rotation.shape[0],) + prior.probes.shape)
  moved = geometry.rigid_about_pivot(probes, rotation, translation, prior.pivot) - probes
  blended = jnp.einsum('fs,smd->fmd', jax.lax.stop_gradient(blend), prior.shape_motion)
  per_frame = jnp.mean(jnp.sum((moved - blended) ** 2, axis=-1), axis=-1)
  return jnp.sum(per_frame * valid) / jnp.maximum(jnp.sum(valid), 1.0)
