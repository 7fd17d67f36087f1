"""Preparing an actor folder: what `experiments/prepare_actor.py` runs, as library calls.

source (synthetic | ICT-FaceKit identity with fitted template bones | folder) -> actor folder
(`folder.save_actor`: meshes, bones, actor.json) + `constraints.npz` (A.1) + `bone_report.json`
(tissue depths, bone poking out) + PNG renders of the bones inside the skin; for ICT also
`jaw_ground_truth.json` (per learning shape) and `performance.npz` (a held-out sequence).
`experiments/learn_model.py --actor=<folder>` then learns it like any other actor.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import workdir as workdir_lib
from aim_jax.anatomy import bone_fit, ict_bones, skull_template
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.anatomy import depths as depths_lib
from aim_jax.data import folder as folder_lib
from aim_jax.data import ict, synthetic
from aim_jax.data.actor import Actor, ActorError, make_actor
from aim_jax.viz import render

NUM_LEARNING_EXPRESSIONS = 19


@dataclasses.dataclass(frozen=True)
class IctActor:
  """An ICT actor with what only the ICT source knows.

  Attributes:
    actor: the Actor (skin region, fitted bones, pivot, masks; no dense ground truth).
    report: the bone fit's report (`ict_bones.BoneFit.report`) plus the identity used.
    jaw_rotation: (S, 3, 3) and jaw_translation: (S, 3) mm ground-truth jaw transform of each
      learning shape about the pivot (Kabsch fit of the lower teeth).
    performance: a held-out `synthetic_performance.Performance`, or None.
  """
  actor: Actor
  report: Dict
  jaw_rotation: np.ndarray
  jaw_translation: np.ndarray
  performance: Optional[object] = None


def check_expressions(model: ict.IctModel, names) -> list:
  """The learning expressions as a list; ActorError naming the problem if they are not 19
  distinct known expressions."""
  names = [str(n) for n in names]
  source = model.source or 'ICT model'
  for name in names:
    model.expression_index(name)
  if len(set(names)) != len(names):
    raise ActorError(f'{source}: the learning expressions repeat a name')
  if len(names) != NUM_LEARNING_EXPRESSIONS:
    raise ActorError(f'{source}: need {NUM_LEARNING_EXPRESSIONS} learning expressions (20 shapes '
                     f'with the neutral), got {len(names)}')
  return names


def parse_coefficients(text: str) -> Optional[np.ndarray]:
  """Comma-separated numbers -> (K,) array; None for an empty string; ActorError if bad."""
  if not text or not str(text).strip():
    return None
  try:
    return np.array([float(x) for x in str(text).replace(' ', '').split(',') if x], np.float64)
  except ValueError as err:
    raise ActorError(f'identity coefficients {text!r}: not comma-separated numbers') from err


def trusted_mask(model: ict.IctModel, head: np.ndarray, vertex_ids: np.ndarray,
                 config: ml_collections.ConfigDict) -> np.ndarray:
  """(V,) bool: all but the lips, the lower nose and the eyelids (balls around landmarks)."""
  untrusted = (ict_bones.landmark_mask(model, head, vertex_ids, range(48, 60),
                                       config.untrusted_lip_radius_mm)
               | ict_bones.landmark_mask(model, head, vertex_ids, range(30, 36),
                                         config.untrusted_nose_radius_mm)
               | ict_bones.landmark_mask(model, head, vertex_ids, range(36, 48),
                                         config.untrusted_eye_radius_mm))
  return ~untrusted


def warp_settings(config: ml_collections.ConfigDict) -> bone_fit.WarpSettings:
  """bone_fit.WarpSettings from a config's bone_fit block."""
  fields = {f.name for f in dataclasses.fields(bone_fit.WarpSettings)}
  return bone_fit.WarpSettings(**{k: v for k, v in config.bone_fit.items() if k in fields})


def make_ict_actor(config: ml_collections.ConfigDict,
                   model: Optional[ict.IctModel] = None,
                   template: Optional[skull_template.Template] = None) -> IctActor:
  """Builds an ICT actor: identity, 20 learning shapes, template bones fitted under it.

  Args:
    config: configs/ict_actor.py (ict.path and skull.path must be set unless `model` /
      `template` are given).
    model, template: already loaded model / template bones (saves their loading).
  Raises:
    ActorError: a missing file, an unknown expression or region, bad coefficients.
  """
  cfg = config.ict
  if model is None:
    model = ict.load_ict_model(cfg.path)
  if template is None:
    template = skull_template.load_template(config.skull.path,
                                            config.skull.min_component_vertices)
  names = check_expressions(model, cfg.expressions)
  coefficients = parse_coefficients(cfg.identity_coefficients)
  if coefficients is None:
    coefficients = ict.identity_coefficients(model, cfg.identity_seed, cfg.num_identity_modes)
    default_name = f'ict{cfg.identity_seed}'
  else:
    default_name = 'ict_custom'
  head = ict.identity_neutral(model, coefficients)
  vertex_ids = ict.region_ids(cfg.region)
  faces = ict.region_triangles(model.triangles, vertex_ids)
  weights = np.zeros((len(names) + 1, len(model.expression_names)))
  for i, name in enumerate(names, 1):
    weights[i, model.expression_index(name)] = 1.0
  shapes = ict.blend(model, head, weights, vertex_ids)

  fit = ict_bones.fit_ict_bones(model, head, vertex_ids, faces, template, warp_settings(config))
  error_ids = ict.region_ids(cfg.error_region)
  region = np.isin(vertex_ids, error_ids)
  # The jaw of each learning shape from its lower teeth: the user's "fitted jaws", which the
  # learning's optional jaw prior reads (actor.json's jaw_transforms).
  teeth = ict.region_ids('teeth_lower')
  rotation, translation = ict.jaw_transform(head[teeth], ict.blend(model, head, weights, teeth),
                                            fit.pivot)
  actor = make_actor(
      name=config.name or default_name, shapes=shapes, shape_names=['neutral'] + names,
      faces=faces, skull=fit.cranium, mandible=fit.mandible, pivot=fit.pivot,
      trusted=trusted_mask(model, head, vertex_ids, cfg), region=region,
      source=f'{model.source} ({config.name or default_name})',
      shape_jaws=(rotation, translation), source_vertex_ids=vertex_ids)
  performance = None
  if cfg.performance_frames:
    performance = ict.make_performance(model, head, vertex_ids, fit.pivot,
                                       cfg.performance_frames, cfg.performance_seed,
                                       cfg.performance_activity, cfg.performance_jaw_max_weight,
                                       cfg.performance_max_weight)
  report = dict(fit.report)
  report['identity'] = {'seed': None if default_name == 'ict_custom' else cfg.identity_seed,
                        'coefficients': [float(c) for c in coefficients]}
  report['region'] = cfg.region
  return IctActor(actor=actor, report=report, jaw_rotation=rotation,
                  jaw_translation=translation, performance=performance)


# ---------------------------------------------------------------------------------------------
# Renders.


def _bone_faces(actor: Actor):
  bones = constraints_lib.bones_mesh(actor.skull, actor.mandible)
  return np.asarray(bones.vertices), np.asarray(bones.faces)


def render_bones_in_skin(path: str, actor: Actor, depth: np.ndarray) -> str:
  """PNG: bones with the skin's right half (x < 0) over them, from the front, the left and
  three-quarters; below, the skin coloured by tissue depth (mm)."""
  bone_v, bone_f = _bone_faces(actor)
  skin_v = np.asarray(actor.neutral, np.float64)
  half = actor.faces[(skin_v[actor.faces][:, :, 0] < 0).all(axis=1)]
  vertices = np.concatenate([skin_v, bone_v])
  faces = np.concatenate([half, bone_f + len(skin_v)])
  colors = np.concatenate([np.tile([0.87, 0.66, 0.56, 1.0], (len(half), 1)),
                           np.tile([0.95, 0.94, 0.86, 1.0], (len(bone_f), 1))])
  panels = [dict(vertices=vertices, faces=faces, colors=colors, view=view, title=title)
            for view, title in (('front', 'bones, right half of the skin'),
                                ('side', 'from the left'),
                                ('three_quarter', 'three-quarter'))]
  shown = np.where(np.isfinite(depth), np.clip(depth, -5.0, 30.0), np.nan)
  panels += [dict(vertices=skin_v, faces=actor.faces, values=shown, view=view, vmin=-5.0,
                  vmax=30.0, cmap='turbo', title=title, label='tissue depth (mm; NaN grey)')
             for view, title in (('front', 'tissue depth'), ('side', 'from the left'),
                                 ('three_quarter', 'three-quarter'))]
  return render.render_grid(path, panels, ncols=3, title=actor.name)


# ---------------------------------------------------------------------------------------------
# The whole preparation.


def actor_depths(actor: Actor, max_distance_mm: float = 60.0) -> tuple:
  """(closest-point depth (V,) mm under every skin vertex, outward skin normals (V, 3))."""
  bones = constraints_lib.bones_mesh(actor.skull, actor.mandible)
  normals = depths_lib.oriented_skin_normals(actor.neutral, actor.faces,
                                             np.asarray(bones.vertices).mean(axis=0))
  return depths_lib.closest_depths(bones, actor.neutral, max_distance_mm), normals


def _to_json(value):
  if isinstance(value, dict):
    return {str(k): _to_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_to_json(v) for v in value]
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  return value


def check_output_folder(out: str):
  """ActorError unless `out` is missing, empty or an actor folder (one `prepare_actor` may
  rewrite): a model or fitting workdir, or any other folder with files, is never written into."""
  if not os.path.exists(out):
    return
  if not os.path.isdir(out):
    raise ActorError(f'{out}: exists and is not a folder')
  entries = set(os.listdir(out)) - {workdir_lib.LOCK}
  if not entries:
    return
  if entries & {'model.json', 'checkpoints', workdir_lib.IDENTITY}:  # A model or run workdir.
    raise ActorError(f'{out}: is a model or run workdir, not an actor folder; write the actor '
                     'to another folder')
  if 'actor.json' not in entries and not any(e.startswith('neutral.') for e in entries):
    raise ActorError(f'{out}: is a folder with other files, not an actor folder; write the '
                     'actor to an empty or new folder')


def prepare_actor(source: str, out: str, config: ml_collections.ConfigDict,
                  log: Optional[Callable[[str], None]] = print) -> Dict:
  """Writes an actor folder for `source` ('synthetic', 'ict' or 'folder:<path>' / a path).

  Returns:
    The report written to `out`/bone_report.json.
  Raises:
    ActorError: bad input, one line naming the file and the problem.
  """
  log = log or (lambda line: None)
  check_output_folder(out)
  with workdir_lib.Lock(out, log):
    return _prepare_actor(source, out, config, log)


def _prepare_actor(source: str, out: str, config: ml_collections.ConfigDict,
                   log: Callable[[str], None]) -> Dict:
  start = time.perf_counter()
  extra = None
  if source == 'synthetic':
    actor = synthetic.make_synthetic_actor(config.synthetic.resolution, config.synthetic.seed)
    report = {'source': 'synthetic'}
  elif source == 'ict':
    extra = make_ict_actor(config)
    actor = extra.actor
    report = extra.report
  else:
    path = source.split(':', 1)[1] if source.startswith('folder:') else source
    actor = folder_lib.load_actor(path)
    report = {'source': path}
  log(f'actor {actor.name}: {actor.num_shapes} shapes, {actor.num_vertices} vertices '
      f'({time.perf_counter() - start:.1f} s)')
  folder_lib.save_actor(actor, out)

  depth, normals = actor_depths(actor)
  check = np.ones(actor.num_vertices, bool)
  margin = float(config.bone_fit.margin_mm)
  bones = constraints_lib.bones_mesh(actor.skull, actor.mandible)
  report['skin'] = depths_lib.depth_report(bones, actor.neutral, normals, check, None, margin,
                                           skin_faces=actor.faces)
  if extra is not None:
    with open(os.path.join(out, 'jaw_ground_truth.json'), 'w', encoding='utf-8') as f:
      json.dump({'pivot_mm': actor.pivot.tolist(), 'convention':
                 'a mandible point p moves to R (p - pivot) + pivot + t (mm)',
                 'shapes': {name: {'R': r.tolist(), 't_mm': t.tolist()} for name, r, t in
                            zip(actor.shape_names, extra.jaw_rotation, extra.jaw_translation)}},
                f, indent=1)
    if extra.performance is not None:
      p = extra.performance
      np.savez(os.path.join(out, 'performance.npz'), frames=p.frames, jaw_rotation=p.jaw_rotation,
               jaw_translation=p.jaw_translation, weights=p.weights,
               control_names=np.asarray(p.control_names))

  cfg = config.constraints
  constraints = constraints_lib.compute_constraints(
      actor, max_depth_mm=cfg.max_depth_mm, min_facing=cfg.min_facing,
      source_fraction=cfg.source_fraction, seed=cfg.seed)
  constraints.to_npz(os.path.join(out, 'constraints.npz'))
  report['constraints'] = {'count': constraints.count, 'fraction': constraints.fraction}
  log(f'sparse constraints: {constraints.count} points on {100 * constraints.fraction:.1f}% of '
      'the vertices')
  if config.render:
    render_bones_in_skin(os.path.join(out, 'bones_in_skin.png'), actor, depth)
  report['seconds_total'] = time.perf_counter() - start
  with open(os.path.join(out, 'bone_report.json'), 'w', encoding='utf-8') as f:
    json.dump(_to_json(report), f, indent=1)
  return report
