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

An edited model is a model workdir like `learn_model.py`'s: the checkpoints of the model it was
made from (copied), model.json with an 'edit' entry describing the operations, and edit.npz with
their arrays. `learning.load_model`, `fitting.pipeline.load_fit_model`, `fit_sequence.py` and
`retarget.py` accept it; editing an edited model appends operations.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from aim_jax import mesh_io
from aim_jax import rigid_np
from aim_jax import viz
from aim_jax.data.actor import Actor
from aim_jax.models import aim
from aim_jax.models import edit_field

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


def edited_params(params: Dict, ops: Sequence[Dict]) -> Dict:
  """The params of the edited model: `ops` appended to any edit the model already has."""
  out = dict(params)
  out['edit'] = list(params.get('edit', [])) + [dict(op) for op in ops]
  return out


def region_weight(ops: Sequence[Dict], points_mm: np.ndarray) -> np.ndarray:
  """(N,) the largest weight of any operation at the points (0: untouched)."""
  points = np.asarray(points_mm, np.float32)
  weights = [np.asarray(jax.jit(edit_field.region_weight)(op, points)) for op in ops]
  return np.max(np.stack(weights), axis=0)


def write_edited_model(base_dir: str, out_dir: str, params: Dict, info: Dict,
                       description: Dict) -> str:
  """Writes an edited model workdir: base checkpoints copied, model.json + edit.npz.

  Args:
    base_dir: the model it was made from (a learn_model.py workdir or an edited one).
    out_dir: the new workdir (must not hold a model already).
    params: the edited params (with 'edit', all operations).
    info: the base model's model.json content.
    description: this edit's description (appended to the base's history).
  Returns:
    out_dir.
  """
  if os.path.abspath(base_dir) == os.path.abspath(out_dir):
    raise EditError(f'{out_dir}: the edited model needs its own workdir, not the base model\'s')
  if os.path.exists(os.path.join(out_dir, 'model.json')):
    raise EditError(f'{out_dir}: already holds a model; choose a new --workdir')
  source = os.path.join(base_dir, 'checkpoints')
  if not os.path.isdir(source):
    raise EditError(f'{source}: missing; is {base_dir} a learn_model.py workdir?')
  os.makedirs(out_dir, exist_ok=True)
  target = os.path.join(out_dir, 'checkpoints')
  if os.path.exists(target):
    shutil.rmtree(target)
  shutil.copytree(source, target)
  if os.path.exists(os.path.join(base_dir, 'constraints.npz')):
    shutil.copy2(os.path.join(base_dir, 'constraints.npz'), out_dir)
  np.savez(os.path.join(out_dir, 'edit.npz'), **edit_field.to_npz_arrays(params['edit']))
  history = list(info.get('edit', {}).get('history', [])) + [description]
  new_info = dict(info)
  new_info['edit'] = {'file': 'edit.npz', 'base_model': os.path.abspath(base_dir),
                      'history': history, 'num_operations': len(params['edit'])}
  tmp = os.path.join(out_dir, 'model.json.tmp')
  with open(tmp, 'w') as f:
    json.dump(new_info, f, indent=1)
  os.replace(tmp, os.path.join(out_dir, 'model.json'))
  return out_dir


def evaluate(params: Dict, spec: aim.AIMSpec, points: np.ndarray) -> Dict[str, np.ndarray]:
  """Every field and shape of a (possibly edited) model at the template points (numpy, mm)."""
  return aim.evaluate_chunked(params, points, spec)


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


def render_before_after(path: str, before: Dict, after: Dict, faces: np.ndarray,
                        shape_names: Sequence[str], shapes: Sequence[str] = (),
                        view='three_quarter', title: Optional[str] = None) -> str:
  """A PNG grid: per row one shape (the neutral first) before, after, and after coloured by its
  displacement (mm); a last row with the thickness before and after."""
  indices = [0] + [shape_names.index(s) for s in shapes if s in shape_names and s != 'neutral']
  moved = np.linalg.norm(after['shapes'] - before['shapes'], axis=-1)
  vmax = max(0.5, float(moved[indices].max()))
  panels = []
  for i in indices:
    name = shape_names[i]
    panels.append(dict(vertices=before['shapes'][i], faces=faces, title=f'{name}: before',
                       view=view))
    panels.append(dict(vertices=after['shapes'][i], faces=faces, title=f'{name}: after',
                       view=view))
    panels.append(dict(vertices=after['shapes'][i], faces=faces, values=moved[i],
                       cmap='magma', vmin=0.0, vmax=vmax, label='moved mm',
                       title=f'{name}: change (max {moved[i].max():.2f} mm)', view=view))
  tmax = float(max(before['thickness'].max(), after['thickness'].max()))
  panels.append(dict(vertices=before['shapes'][0], faces=faces, values=before['thickness'],
                     vmin=0.0, vmax=tmax, label='thickness mm', title='thickness: before',
                     view=view))
  panels.append(dict(vertices=after['shapes'][0], faces=faces, values=after['thickness'],
                     vmin=0.0, vmax=tmax, label='thickness mm', title='thickness: after',
                     view=view))
  bone = np.linalg.norm(after['bone'] - before['bone'], axis=-1)
  panels.append(dict(vertices=after['shapes'][0], faces=faces, values=bone, cmap='magma',
                     vmin=0.0, vmax=max(0.5, float(bone.max())), label='bone moved mm',
                     title='bone displacement', view=view))
  return viz.render_grid(path, panels, ncols=3, title=title, share_limits=True)


def run_edit(config: ml_collections.ConfigDict, model_dir: str, workdir: str,
             log=print) -> Dict:
  """Edits the model in `model_dir`, writes the edited model to `workdir` with its report,
  meshes and before/after renders. Returns the report."""
  from aim_jax import learning  # pylint: disable=import-outside-toplevel
  from aim_jax.fitting import pipeline  # pylint: disable=import-outside-toplevel
  params, spec, info = learning.load_model(model_dir)
  actor = pipeline.actor_of_model(info)
  ops, description = make_ops(config, actor)
  new_params = edited_params(params, ops)
  write_edited_model(model_dir, workdir, new_params, info, description)
  points = np.asarray(actor.neutral, np.float32)
  before = evaluate(params, spec, points)
  after = evaluate(new_params, spec, points)
  weight = region_weight(ops, points)
  names = list(info['actor']['shape_names'])
  report = {'base_model': model_dir, 'edit': description,
            **edit_report(before, after, weight, new_params, spec, names)}
  with open(os.path.join(workdir, 'edit_report.json'), 'w') as f:
    json.dump(report, f, indent=1)
  if config.output.meshes:
    folder = os.path.join(workdir, 'meshes')
    os.makedirs(folder, exist_ok=True)
    moved = np.linalg.norm(after['shapes'] - before['shapes'], axis=-1)
    for i, name in enumerate(names):
      mesh_io.write_colored_mesh(os.path.join(folder, f'{i:02d}_{name}.ply'), after['shapes'][i],
                                 actor.faces, viz.scalar_colors(moved[i], cmap='magma', vmin=0.0))
    mesh_io.write_colored_mesh(os.path.join(folder, 'neutral_before.ply'), before['shapes'][0],
                               actor.faces)
  if config.output.render:
    render_before_after(os.path.join(workdir, 'renders', 'before_after.png'), before, after,
                        actor.faces, names, [s for s in config.output.render_shapes.split(',')
                                             if s], view=config.output.view,
                        title=f'{info["actor"]["name"]}: edit {description["region"]["kind"]}, '
                              f'thickness x{description["thickness_scale"]:g} '
                              f'+{description["thickness_offset_mm"]:g} mm, bone '
                              f'{np.round(description["bone_offset_mm"], 1).tolist()} mm')
  if log:
    n = report['neutral_displacement_mm']
    log(f'edited {model_dir} -> {workdir}: {report["vertices"]["affected"]} vertices affected, '
        f'neutral moved {n["affected"]["mean"]:.2f} mm on average there (max '
        f'{n["affected"]["max"]:.2f} mm), untouched vertices moved {n["untouched_max"]:.2g} mm; '
        f'expressions carry the edit to {max(v["carry_residual_mm"] for v in report["shapes"].values()):.1e} mm')
  return report
