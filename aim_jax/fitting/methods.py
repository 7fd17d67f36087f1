"""The fitting methods compared on one sequence: AIM, AIM-global and global blendshapes.

A method turns a learned model (`basis.FitModel`) and targets into fitted frames; `evaluate_methods`
measures every method's frames against ground truth (or the dense targets). What a fitting run
writes (fit.npz, meshes, report.json, ...) is `aim_jax/runs/fit.py`.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax.data import synthetic_performance
from aim_jax.data.actor import Actor
from aim_jax.fitting import baselines, cross_validation, synthetic_targets
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.fitting.basis import FitModel

METHODS = ('aim', 'aim_global', 'gbs')

# The config weights each method's regularisation strength is made of; `config.cv.scales`
# multiplies them together (for AIM: the coefficient field's smoothness and shrinkage).
REGULARISATION = {'aim': ('loss.coefficient_smooth', 'loss.coefficient_shrink'),
                  'aim_global': ('loss.coefficients',),
                  'gbs': ('gbs.ridge',)}


def synthetic_sequence_targets(config: ml_collections.ConfigDict, actor: Actor):
  """Targets made from the synthetic actor's held-out performance: (targets, ground truth)."""
  s = config.synthetic
  performance = synthetic_performance.make_performance(actor, num_frames=s.num_frames, seed=s.seed)
  frames = performance.frames
  if s.kind == 'dense':
    targets = {'dense': targets_lib.dense_targets(frames, actor.region)}
  elif s.kind == 'markers':
    targets = {'markers': synthetic_targets.markers(
        actor.neutral, actor.faces, actor.region, frames, count=s.num_markers,
        noise_mm=s.marker_noise_mm, seed=s.seed, dropout=s.marker_dropout)}
  elif s.kind == 'landmarks':
    camera = synthetic_targets.frontal_camera(actor.neutral)
    targets = {'landmarks': synthetic_targets.landmarks(
        actor.neutral, actor.faces, actor.region, frames, camera, count=s.num_landmarks,
        noise_px=s.noise_px, seed=s.seed)}
  else:
    raise ValueError(f'config.synthetic.kind must be dense, markers or landmarks, got {s.kind!r}')
  truth = {'frames': frames, 'jaw_rotation': performance.jaw_rotation,
           'jaw_translation': performance.jaw_translation}
  return targets, truth


def fit_method(method: str, config, model: FitModel, targets, workdir: str,
               log: Optional[Callable[[str], None]] = print) -> Dict[str, np.ndarray]:
  """Fits one method; returns at least 'frames' (F, V, 3) mm (and jaws for AIM methods)."""
  if method == 'gbs':
    weights = baselines.fit_gbs(model.gbs_basis, targets, ridge=config.gbs.ridge,
                                iterations=config.gbs.iterations)
    return {'frames': baselines.gbs_frames(model.gbs_basis, weights), 'weights': weights}
  if method not in ('aim', 'aim_global'):
    raise ValueError(f'unknown method {method!r}; expected one of {METHODS}')
  if method == 'aim':
    config = config_for_targets(config, targets)
  variant = 'global' if method == 'aim_global' else config.model.variant
  spec = fit_lib.fit_spec(config, model.basis.num_coefficients, variant)
  return fit_lib.fit_sequence(config, spec, model.basis, targets, os.path.join(workdir, method),
                              log=log, topology=model.topology)


def config_for_targets(config: ml_collections.ConfigDict, targets
                       ) -> ml_collections.ConfigDict:
  """AIM's settings for these targets: when every target kind is in `loss.field_kinds` (3D
  markers by default), F_W runs at `model.sparse_w0` with the coefficient-field terms; otherwise
  (dense targets, 2D landmarks) at `model.w0` without them. With dense targets the peak
  learning rate is `train.dense_learning_rate` when set (configs/fit.py says why)."""
  config = ml_collections.ConfigDict(config.to_dict())
  if 'dense' in targets and config.train.get('dense_learning_rate'):
    config.train.learning_rate = float(config.train.dense_learning_rate)
  if fit_lib.field_terms_apply(fit_lib.field_kinds(config), targets):
    if config.model.get('sparse_w0'):
      config.model.w0 = float(config.model.sparse_w0)
  else:
    config.loss.coefficient_smooth = 0.0
    config.loss.coefficient_shrink = 0.0
  return config


def scaled_config(config: ml_collections.ConfigDict, method: str, scale: float
                  ) -> ml_collections.ConfigDict:
  """A copy of the config with the method's regularisation weights (`REGULARISATION`) times
  `scale`."""
  config = ml_collections.ConfigDict(config.to_dict())
  for name in REGULARISATION[method]:
    group, key = name.split('.')
    config[group][key] = float(config[group][key]) * float(scale)
  return config


def parse_scales(text: str) -> list:
  """'0.25,1,4' -> [0.25, 1.0, 4.0] ([1.0] when empty); ValueError on a bad entry."""
  try:
    scales = [float(s) for s in str(text).split(',') if s.strip()] or [1.0]
  except ValueError:
    raise ValueError(f'config.cv.scales must be comma-separated numbers, got {text!r}') from None
  if any(not np.isfinite(s) or s < 0 for s in scales):
    raise ValueError(f'config.cv.scales must be finite and >= 0, got {text!r}')
  return scales


def observation_noise(config: ml_collections.ConfigDict) -> Dict[str, float]:
  """{kind: noise per axis} the user states (`config.noise`): mm for markers, px for
  landmarks."""
  return {'markers': float(config.noise.markers_mm),
          'landmarks': float(config.noise.landmarks_px)}


def fit_with_held_out(method: str, config, model: FitModel, targets, workdir: str,
                      log: Optional[Callable[[str], None]] = print) -> tuple:
  """`fit_method` plus k-fold held-out markers / landmarks (`config.cv`).

  With `cv.folds` >= 2 and sparse targets, every scale of `cv.scales` is cross-validated (fits
  under `workdir/<method>/cv/`, resumable), the scale with the lowest held-out error is kept and
  the method is fitted once more on every observation with it. Without, this is `fit_method`.

  Returns:
    (result of fit_method, held-out report or None): {'folds', 'seed', 'scales',
    'chosen_scale', 'held_out': {kind: summary} of the chosen scale, 'per_scale': [...]}.
  """
  folds = int(config.cv.folds)
  if folds < 2 or not any(k in cross_validation.SPARSE_KINDS for k in targets):
    return fit_method(method, config, model, targets, workdir, log), None
  scales = parse_scales(config.cv.scales)
  noise = observation_noise(config)
  per_scale = []
  for scale in scales:
    scaled = scaled_config(config, method, scale)
    base = os.path.join(workdir, method, 'cv', f'scale_{scale:g}')

    def fit(train, fold, scaled=scaled, base=base, scale=scale):
      if log:
        log(f'{method}: held-out fold {fold + 1}/{folds}, regularisation x{scale:g}')
      return fit_method(method, scaled, model, train, os.path.join(base, f'fold_{fold}'),
                        log=None)['frames']
    held_out = cross_validation.cross_validate(fit, targets, folds, int(config.cv.seed), noise)
    per_scale.append({'scale': scale, 'held_out': held_out,
                      'score': cross_validation.held_out_score(held_out)})
    if log:
      log(f'{method}: regularisation x{scale:g}, held-out '
          + ', '.join(f'{k} rms {v["rms"]:.3f} {"px" if k == "landmarks" else "mm"}'
                      for k, v in held_out.items()) + f' ({folds} folds)')
  best = cross_validation.select_by_held_out([p['score'] for p in per_scale], scales)
  result = fit_method(method, scaled_config(config, method, scales[best]), model, targets,
                      workdir, log)
  return result, {'folds': folds, 'seed': int(config.cv.seed), 'scales': scales,
                  'chosen_scale': scales[best], 'held_out': per_scale[best]['held_out'],
                  'per_scale': per_scale}


def evaluate_methods(results: Dict[str, Dict], truth: Optional[Dict], targets, actor: Actor
                     ) -> Dict:
  """Error of every method: against ground truth frames when given, else against dense targets.

  Returns {'error_against', 'error_mm': {method: stats}, 'per_frame_mm': {method: (F,)},
  'jaw': {method: jaw_errors}}.
  """
  if truth is not None:
    reference, against = truth['frames'], 'ground_truth'
  elif 'dense' in targets:
    dense = targets['dense']
    ids = np.asarray(dense.points.vertices[:, 0])
    reference = np.full((dense.num_frames, actor.num_vertices, 3), np.nan, np.float32)
    reference[:, ids] = np.asarray(dense.values)
    against = 'dense_targets'
  else:
    return {'error_against': None, 'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}
  region = actor.region & np.all(np.isfinite(reference), axis=(0, 2))
  return {'error_against': against,
          **eval_lib.sequence_errors(results, reference, region, truth, actor.pivot)}


def parse_methods(config: ml_collections.ConfigDict) -> list:
  """The methods of `config.methods` (comma separated); ValueError naming any unknown one."""
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ValueError(f'config.methods: unknown or no method(s) {unknown}; expected {METHODS}')
  return methods
