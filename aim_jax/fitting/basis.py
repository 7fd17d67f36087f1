"""The frozen AIM's fields at the template vertices, evaluated once per actor and cached.

Fitting (supplementary Fig. 12) estimates a frame as
  x_j(c) = skin(s0(c), k(c), T_j) + sum_i w_ij(c) e_i(c),
where only the coefficients w_j(c) and the jaw transform T_j are unknown: s0, k and e_i depend on
the template point c alone, so they are evaluated once (`basis_from_model`) and the fitting loop
never runs the AIM networks. `uncached_fields` is the same computation through the networks, for
the benchmark's comparison.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import flax
import jax.numpy as jnp
import numpy as np

from aim_jax import geometry
from aim_jax.data.actor import Actor
from aim_jax.fitting import jaw_prior as jaw_prior_lib
from aim_jax.fitting import mesh_topology
from aim_jax.models import aim


@flax.struct.dataclass
class ModelBasis:
  """The cached fields of a frozen model at V template points (mm).

  Attributes:
    points: (V, 3) template points c (the neutral's vertices), mm.
    coords: (V, 3) c normalised to about [-1, 1]^3 (the fitting MLPs' point input).
    neutral: (V, 3) s0(c), the model's neutral, mm.
    skinning: (V,) jaw skinning weight k(c).
    deltas: (V, S-1, 3) expression deltas e_i(c), mm.
    pivot: (3,) jaw pivot, mm.
  """
  points: jnp.ndarray
  coords: jnp.ndarray
  neutral: jnp.ndarray
  skinning: jnp.ndarray
  deltas: jnp.ndarray
  pivot: jnp.ndarray

  @property
  def num_vertices(self) -> int:
    return int(self.points.shape[0])

  @property
  def num_coefficients(self) -> int:
    return int(self.deltas.shape[1])

  def take(self, index: jnp.ndarray) -> 'ModelBasis':
    """The basis at a subset of vertices: index (P,) int -> a ModelBasis of P points."""
    return ModelBasis(points=self.points[index], coords=self.coords[index],
                      neutral=self.neutral[index], skinning=self.skinning[index],
                      deltas=self.deltas[index], pivot=self.pivot)


def basis_from_model(params: Dict, spec: aim.AIMSpec, points_mm: np.ndarray,
                     chunk: int = 8192, edit: Optional[List[Dict]] = None) -> ModelBasis:
  """Evaluates the frozen AIM at the template points once (in chunks) and caches the fields
  (with an edited model's `edit` applied)."""
  fields = aim.evaluate_chunked(params, points_mm, spec, chunk=chunk, edit=edit)
  points = jnp.asarray(points_mm, jnp.float32)
  return ModelBasis(points=points, coords=aim.normalize_points(points, spec),
                    neutral=jnp.asarray(fields['shapes'][0]),
                    skinning=jnp.asarray(fields['skinning']),
                    deltas=jnp.asarray(fields['expression']),
                    pivot=jnp.asarray(spec.pivot, jnp.float32))


def uncached_fields(params: Dict, spec: aim.AIMSpec, points_mm: jnp.ndarray,
                    edit: Optional[List[Dict]] = None) -> ModelBasis:
  """The same fields evaluated through the AIM networks (differentiable, traceable).

  Used by the uncached fitting path: a loop that calls this every step re-runs the five SIRENs.
  """
  fields = aim.anatomy(params, points_mm, spec, aim.NETWORKS, edit)
  return ModelBasis(points=points_mm, coords=aim.normalize_points(points_mm, spec),
                    neutral=aim.neutral_from_anatomy(fields), skinning=fields['skinning'],
                    deltas=fields['expression'], pivot=jnp.asarray(spec.pivot, jnp.float32))


def gbs_basis(shapes: np.ndarray, points_mm: np.ndarray, spec: aim.AIMSpec) -> ModelBasis:
  """Global blendshapes as a basis: neutral = the data neutral, deltas = s_i - s_0, no jaw.

  Lets the linear baseline share the evaluation and loss code (skinning 0: the jaw motion is in
  the blendshapes, as in a production rig).
  """
  shapes = np.asarray(shapes, np.float32)
  points = jnp.asarray(points_mm, jnp.float32)
  return ModelBasis(points=points, coords=aim.normalize_points(points, spec),
                    neutral=jnp.asarray(shapes[0]),
                    skinning=jnp.zeros(shapes.shape[1], jnp.float32),
                    deltas=jnp.asarray(np.moveaxis(shapes[1:] - shapes[:1], 0, 1)),
                    pivot=jnp.asarray(spec.pivot, jnp.float32))


def basis_from_ground_truth(actor, spec: aim.AIMSpec) -> ModelBasis:
  """The fields a perfect AIM of a synthetic actor would hold: s0 = the neutral, k = the true
  skinning weight, e_i = s_i - skin(s0, k, T_i) with the true jaw transforms.

  A model-free reference for testing and benchmarking the fitter (what fitting alone can reach).
  """
  gt = actor.ground_truth
  if gt is None:
    raise ValueError(f'{actor.name}: basis_from_ground_truth needs an actor with ground truth')
  neutral = np.asarray(actor.neutral, np.float32)
  skinned = np.asarray(geometry.skin(
      jnp.asarray(neutral), jnp.asarray(gt.skinning, jnp.float32),
      jnp.asarray(gt.jaw_rotation, jnp.float32), jnp.asarray(gt.jaw_translation, jnp.float32),
      jnp.asarray(actor.pivot, jnp.float32)))
  deltas = np.asarray(actor.shapes, np.float32)[1:] - skinned[1:]
  points = jnp.asarray(neutral)
  return ModelBasis(points=points, coords=aim.normalize_points(points, spec),
                    neutral=points, skinning=jnp.asarray(gt.skinning, jnp.float32),
                    deltas=jnp.asarray(np.moveaxis(deltas, 0, 1)),
                    pivot=jnp.asarray(actor.pivot, jnp.float32))



@dataclasses.dataclass
class FitModel:
  """A learned model ready for fitting: AIM params, spec and edit, its actor and cached bases.

  Attributes:
    info: the model directory's model.json content.
    edit: an edited model's operations (`edit_field`), None for an unedited model.
    basis: the model's fields at the actor's neutral vertices (with the edit).
    gbs_basis: the global-blendshape baseline's basis (the actor's shapes; an edited model's own
      shapes).
    topology: the actor mesh's neighbours over its region (the coefficient-field terms).
    jaw: the learned per-shape jaws at points of the actor's mandible with the GBS basis (the
      `jaw_blend` term, `fitting/jaw_prior.py`).
  """
  params: Dict
  spec: aim.AIMSpec
  info: Dict
  actor: Actor
  basis: ModelBasis
  gbs_basis: ModelBasis
  edit: Optional[List[Dict]] = None
  topology: Optional[mesh_topology.Topology] = None
  jaw: Optional[jaw_prior_lib.JawModel] = None


def make_fit_model(params: Dict, spec: aim.AIMSpec, info: Dict, actor: Actor,
                   edit: Optional[List[Dict]] = None) -> FitModel:
  """Evaluates a learned model once at the actor's neutral vertices (both bases).

  For an edited model the fields carry the edit, and the GBS baseline uses the edited model's
  shapes instead of the actor's (unedited) data.
  """
  basis = basis_from_model(params, spec, actor.neutral, edit=edit)
  shapes = actor.shapes
  if edit is not None:
    shapes = aim.evaluate_chunked(params, actor.neutral, spec, edit=edit)['shapes']
  gbs = gbs_basis(shapes, actor.neutral, spec)
  jaw = jaw_prior_lib.make_jaw_prior(params, actor.mandible.vertices, actor.pivot)
  return FitModel(params=params, spec=spec, info=info, actor=actor, basis=basis, gbs_basis=gbs,
                  edit=edit, topology=mesh_topology.make_topology(actor.faces, actor.num_vertices,
                                                                  actor.region),
                  jaw=jaw_prior_lib.JawModel(jaw, gbs))
