"""Anatomy-driven shape editing (DESIGN.md section 7): edit a learned AIM, regenerate every shape.

An edit scales the soft-tissue thickness in a region or displaces the bone points by a smooth
field; it is realised exactly, without retraining, by analytic operations applied on top of the
network outputs wherever the model is queried (`aim_jax/models/edit_field.py`): D' = D times a
smooth factor, B' = B plus a smooth displacement; N, K, E and the jaw transforms are unchanged.
Because the neutral and every expression come from the model's formula (s0' = B' + D' N,
s_i' = (1 - k) s0' + k (R_i (s0' - p) + p + t_i) + e_i), the edit carries into every expression
and into any performance composed with the model (fitted, or retargeted onto it).

Regions (on the model's template points c, mm):
- 'sphere': one centre (mm, or a template vertex) with a radius;
- 'vertices': a list of vertex ids;
- 'mask': a file (.npy or text) holding a (V,) 0/1 mask or a list of vertex ids.
Each has a smooth falloff (mm) outside it, and can be mirrored across the actor's sagittal plane.

An edited model is a model directory like a learned one (`aim_jax/model_dir.py`, which writes
and reads it): the checkpoints of the model it was made from (copied), model.json with an 'edit'
entry describing the operations, and edit.npz with their arrays. `model_dir.load_model` returns
the operations apart from the params (`LoadedModel.edit`), and every evaluation takes them as
its `edit` argument; editing an edited model appends operations. The edit run (report, meshes,
renders) is `aim_jax/runs/edit.py`.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from aim_jax import rigid_np
from aim_jax.data.actor import Actor
from aim_jax.models import aim, edit_field

REGION_KINDS = ('sphere', 'vertices', 'mask')


class EditError(ValueError):
  """A problem with an edit's input; the message names the file or field."""


def parse_vector(text: str, what: str, size: int = 3) -> np.ndarray:
  """'x,y,z' -> (size,) float64; EditError naming `what` otherwise."""
  try:
    values = np.array([float(t) for t in str(text).replace(' ', '').split(',') if t], np.float64)
  except ValueError:
    raise EditError(f'{what}: cannot read {text!r} as {size} comma-separated numbers') from None
  if values.shape != (size,):
    raise EditError(f'{what}: expected {size} comma-separated numbers, got {text!r}')
  return values


def parse_ids(text: str, num_vertices: int, what: str) -> np.ndarray:
  """'1,2,3' -> (n,) int vertex ids, checked against the vertex count."""
  try:
    ids = np.array([int(t) for t in str(text).replace(' ', '').split(',') if t], np.int64)
  except ValueError:
    raise EditError(f'{what}: cannot read {text!r} as comma-separated vertex ids') from None
  return check_ids(ids, num_vertices, what)


def check_ids(ids: np.ndarray, num_vertices: int, what: str) -> np.ndarray:
  ids = np.unique(np.asarray(ids, np.int64))
  if ids.size == 0:
    raise EditError(f'{what}: the region is empty')
  if ids.min() < 0 or ids.max() >= num_vertices:
    raise EditError(f'{what}: vertex ids must lie in [0, {num_vertices}), got '
                    f'{ids.min()}..{ids.max()}')
  return ids


def read_region_file(path: str, num_vertices: int) -> np.ndarray:
  """Vertex ids of a region file: .npy or text, a (V,) 0/1 mask or a list of ids.

  A file of exactly V values, all 0 or 1, is a mask; anything else is a list of ids.
  """
  if not os.path.exists(path):
    raise EditError(f'{path}: no such region file')
  try:
    if path.lower().endswith('.npy'):
      values = np.load(path, allow_pickle=False)
    else:
      values = np.loadtxt(path, ndmin=1)
  except (ValueError, OSError) as err:
    raise EditError(f'{path}: cannot read a vertex mask or id list ({err})') from None
  values = np.asarray(values).ravel()
  if values.size == 0:
    raise EditError(f'{path}: the region is empty')
  looks_like_mask = values.dtype == bool or (values.size > 2 and np.isin(values, (0, 1)).all())
  if looks_like_mask and values.size != num_vertices:
    raise EditError(f'{path}: a 0/1 mask of {values.size} values, but the model has '
                    f'{num_vertices} vertices')
  if values.dtype == bool or (values.size == num_vertices and np.isin(values, (0, 1)).all()):
    return check_ids(np.flatnonzero(values.astype(bool)), num_vertices, path)
  if not np.all(np.equal(np.mod(values, 1), 0)):
    raise EditError(f'{path}: expected a (V,) 0/1 mask (V = {num_vertices}) or integer vertex '
                    'ids')
  return check_ids(values.astype(np.int64), num_vertices, path)


def region_anchors(region: ml_collections.ConfigDict, template: np.ndarray
                   ) -> tuple:
  """Anchor points, radius and a description of a region config.

  Args:
    region: config with kind, center_mm, center_vertex, vertices, mask, radius_mm.
    template: (V, 3) mm the model's template points.
  Returns:
    (anchors (M, 3) mm, radius mm, anchor vertex ids or None, description dict).
  """
  num_vertices = template.shape[0]
  if region.kind == 'sphere':
    if region.center_vertex >= 0:
      ids = check_ids([region.center_vertex], num_vertices, 'config.region.center_vertex')
      center = template[ids[0]]
    elif region.center_mm:
      ids, center = None, parse_vector(region.center_mm, 'config.region.center_mm')
    else:
      raise EditError('config.region: a sphere needs center_mm (x,y,z) or center_vertex')
    if not region.radius_mm >= 0.0:
      raise EditError(f'config.region.radius_mm must be >= 0, got {region.radius_mm}')
    return (center[None], float(region.radius_mm), ids,
            {'kind': 'sphere', 'center_mm': center.tolist(), 'radius_mm': region.radius_mm})
  if region.kind == 'vertices':
    ids = parse_ids(region.vertices, num_vertices, 'config.region.vertices')
  elif region.kind == 'mask':
    if not region.mask:
      raise EditError('config.region.mask: a mask region needs a file')
    ids = read_region_file(region.mask, num_vertices)
  else:
    raise EditError(f'config.region.kind must be one of {REGION_KINDS}, got {region.kind!r}')
  return (template[ids], 0.0, ids,
          {'kind': region.kind, 'count': int(ids.size),
           **({'mask': region.mask} if region.kind == 'mask' else {})})


def make_ops(config: ml_collections.ConfigDict, actor: Actor) -> tuple:
  """The edit operations of an edit config on an actor's template.

  With `config.region.symmetric` the region is mirrored across the actor's sagittal plane (the
  bone offset mirrored with it): one operation over both sides when the offset is its own mirror
  image (e.g. along the midline), two otherwise; a region that is its own mirror image is not
  duplicated.

  Returns:
    (ops, description dict for model.json).
  """
  template = np.asarray(actor.neutral, np.float64)
  anchors, radius, ids, described = region_anchors(config.region, template)
  scale = float(config.thickness_scale)
  add = float(config.thickness_offset_mm)
  offset = parse_vector(config.bone_offset_mm, 'config.bone_offset_mm')
  if scale == 1.0 and add == 0.0 and not np.any(offset):
    raise EditError('the edit changes nothing: set config.thickness_scale != 1, '
                    'config.thickness_offset_mm or config.bone_offset_mm')
  falloff = float(config.region.falloff_mm)
  try:
    ops = [edit_field.make_op(anchors, radius, falloff, scale, offset, add)]
  except ValueError as err:
    raise EditError(f'config: {err}') from None
  if config.region.symmetric:
    plane = np.asarray(actor.mirror_plane, np.float64)
    if ids is not None and config.region.kind != 'sphere':
      partners = actor.symmetry[ids]
      mirrored = template[partners[partners >= 0]]
    else:
      mirrored = rigid_np.reflect(anchors, plane)
    mirrored_offset = rigid_np.reflect_direction(offset, plane)
    own_image = _same_points(mirrored, anchors)
    if not own_image:
      if np.allclose(mirrored_offset, offset, atol=1e-6):
        ops = [edit_field.make_op(np.concatenate([anchors, mirrored]), radius, falloff, scale,
                                  offset, add)]
      else:
        ops.append(edit_field.make_op(mirrored, radius, falloff, scale, mirrored_offset, add))
  description = {'region': {**described, 'falloff_mm': falloff,
                            'symmetric': bool(config.region.symmetric)},
                 'thickness_scale': scale, 'thickness_offset_mm': add,
                 'bone_offset_mm': offset.tolist()}
  return ops, description


def _same_points(a: np.ndarray, b: np.ndarray, tol: float = 1e-3) -> bool:
  if a.shape != b.shape:
    return False
  d = np.linalg.norm(a[:, None] - b[None], axis=-1)
  return bool(np.all(d.min(axis=1) < tol))


def combined_edit(edit: Optional[Sequence[Dict]], ops: Sequence[Dict]) -> List[Dict]:
  """The edited model's operations: `ops` appended to any edit the model already has (None:
  an unedited model)."""
  return list(edit or []) + [dict(op) for op in ops]


def region_weight(ops: Sequence[Dict], points_mm: np.ndarray) -> np.ndarray:
  """(N,) the largest weight of any operation at the points (0: untouched)."""
  points = np.asarray(points_mm, np.float32)
  weights = [np.asarray(jax.jit(edit_field.region_weight)(op, points)) for op in ops]
  return np.max(np.stack(weights), axis=0)


def evaluate(params: Dict, spec: aim.AIMSpec, points: np.ndarray,
             edit: Optional[Sequence[Dict]] = None) -> Dict[str, np.ndarray]:
  """Every field and shape of a (possibly edited) model at the template points (numpy, mm)."""
  return aim.evaluate_chunked(params, points, spec, edit=edit)


def shape_carry_residual(before: Dict, after: Dict, params: Dict, spec: aim.AIMSpec
                         ) -> np.ndarray:
  """(S,) max |(s_i' - s_i) - ((1 - k) I + k R_i)(s0' - s0)| mm: how far each shape departs
  from carrying the neutral's edit through the (unchanged) jaw skinning; ~float precision when
  the edit regenerates the expressions consistently."""
  rotation, _ = aim.jaw_transforms(params)
  rotation = np.asarray(rotation, np.float64)
  delta = after['shapes'][0].astype(np.float64) - before['shapes'][0]
  k = before['skinning'].astype(np.float64)[:, None]
  carried = (1.0 - k)[None] * delta[None] + k[None] * np.einsum('sij,vj->svi', rotation, delta)
  change = after['shapes'].astype(np.float64) - before['shapes']
  return np.abs(change - carried).max(axis=(1, 2))


def edit_report(before: Dict, after: Dict, weight: np.ndarray, params: Dict,
                spec: aim.AIMSpec, shape_names: Sequence[str]) -> Dict:
  """What the edit did, measured at the template vertices (mm).

  Args:
    before, after: `evaluate` of the base and the edited model.
    weight: (V,) the edit's region weight (0 outside its support, 1 in its core).
  """
  inside, core, outside = weight > 0.0, weight >= 1.0, weight <= 0.0
  moved = np.linalg.norm(after['shapes'][0] - before['shapes'][0], axis=-1)
  bone = np.linalg.norm(after['bone'] - before['bone'], axis=-1)
  ratio = after['thickness'] / np.maximum(before['thickness'], 1e-6)
  shape_moved = np.linalg.norm(after['shapes'] - before['shapes'], axis=-1)
  carry = shape_carry_residual(before, after, params, spec)

  def stat(values, mask):
    values = values[mask]
    if values.size == 0:
      return None
    return {'mean': float(values.mean()), 'max': float(values.max())}

  return {
      'vertices': {'affected': int(inside.sum()), 'core': int(core.sum()),
                   'untouched': int(outside.sum())},
      'neutral_displacement_mm': {'affected': stat(moved, inside),
                                  'untouched_max': float(moved[outside].max(initial=0.0))},
      'thickness_ratio': {'core': stat(ratio, core), 'affected': stat(ratio, inside),
                          'untouched_max_change': float(
                              np.abs(after['thickness'] - before['thickness'])[outside].max(
                                  initial=0.0))},
      'bone_displacement_mm': {'affected': stat(bone, inside),
                               'untouched_max': float(bone[outside].max(initial=0.0))},
      'shapes': {name: {'mean_displacement_affected_mm': float(shape_moved[i][inside].mean())
                        if inside.any() else 0.0,
                        'untouched_max_mm': float(shape_moved[i][outside].max(initial=0.0)),
                        'carry_residual_mm': float(carry[i])}
                 for i, name in enumerate(shape_names)},
  }
