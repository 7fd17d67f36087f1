"""The fitting methods compared on one sequence: AIM, AIM-global and global blendshapes.

A method turns a learned model (`basis.FitModel`) and targets into fitted frames; `evaluate_methods`
measures every method's frames against ground truth (or the dense targets). What a fitting run
writes (fit.npz, meshes, report.json, ...) is `aim_jax/runs/fit.py`. For sequences of any length
the fits are kept on disk chunk by chunk (`fit_method_chunks`, `fitting/chunks.py`) and measured
a chunk at a time (`evaluate_chunks`), with the numbers of the in-memory path.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import distributed, files
from aim_jax import eval as eval_lib
from aim_jax.data import synthetic_performance
from aim_jax.data.actor import Actor
from aim_jax.fitting import baselines, cross_validation, refinement, synthetic_targets
from aim_jax.fitting import chunks as chunks_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.fitting.basis import FitModel

METHODS = ('aim', 'aim_global', 'gbs')

# The config weights each method's regularisation strength is made of; `config.cv.scales`
# multiplies them together (for AIM: the coefficient field's smoothness and shrinkage).
REGULARISATION = {'aim': ('loss.coefficient_smooth', 'loss.coefficient_shrink'),
                  'aim_global': ('loss.coefficients',),
                  'gbs': ('gbs.ridge',)}


def synthetic_sequence_targets(config: ml_collections.ConfigDict, actor: Actor,
                               stream: bool = False):
  """Targets made from the synthetic actor's held-out performance: (targets, ground truth).

  With `stream`, the ground truth's 'frames' is a `synthetic_performance.PerformanceFrames`
  (played a range of frames at a time, the same values) instead of a (F, V, 3) array, and the
  markers and landmarks are made a block of frames at a time: no (F, V, 3) array is held (dense
  targets hold every frame anyway).
  """
  s = config.synthetic
  performance = synthetic_performance.stream_performance(actor, num_frames=s.num_frames,
                                                         seed=s.seed)
  frames = performance.frames if stream else np.asarray(performance.frames)
  if s.kind == 'dense':
    targets = {'dense': targets_lib.dense_targets(np.asarray(frames), actor.region)}
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


def _check_method(method: str):
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}; expected one of {METHODS}')


def _gbs_chunk(config, model: FitModel, targets, start: int, stop: int) -> Dict[str, np.ndarray]:
  """GBS of frames start..stop-1: 'frames' (n, V, 3) mm and 'weights' (n, S-1). Each frame is
  solved on its own (`baselines.fit_gbs`); the batch size changes only the float32 rounding of
  the batched solve, so every path fits GBS in the same chunks (`train.chunk_frames`)."""
  weights = baselines.fit_gbs(model.gbs_basis, {k: t.frames(slice(start, stop))
                                                for k, t in targets.items()},
                              ridge=config.gbs.ridge, iterations=config.gbs.iterations)
  return {'frames': baselines.gbs_frames(model.gbs_basis, weights), 'weights': weights}


def _ranges(config, targets) -> list:
  num_frames = next(iter(targets.values())).num_frames
  return fit_lib.chunk_ranges(num_frames, int(config.train.chunk_frames))


def _aim_settings(method: str, config, model: FitModel, targets) -> tuple:
  """(config, FitSpec) of an AIM method for these targets."""
  if method == 'aim':
    config = config_for_targets(config, targets)
  variant = 'global' if method == 'aim_global' else config.model.variant
  return config, fit_lib.fit_spec(config, model.basis.num_coefficients, variant)


def fit_method_chunks(method: str, config, model: FitModel, targets, workdir: str,
                      log: Optional[Callable[[str], None]] = print) -> chunks_lib.Chunks:
  """Fits one method in `workdir/<method>` a chunk of `train.chunk_frames` frames at a time,
  each chunk's results kept in <method>/chunk_XXX/result.npz (a rerun reuses them); returns
  them as `chunks.Chunks`, holding one chunk in memory at a time. The arrays are those of
  `fit_method`."""
  _check_method(method)
  folder = os.path.join(workdir, method)
  if method != 'gbs':
    config, spec = _aim_settings(method, config, model, targets)
    finish = (functools.partial(refinement.refine_frames, config, spec, model.basis, log=log)
              if refinement.applies(config, spec, targets) else None)
    return fit_lib.fit_sequence_chunks(config, spec, model.basis, targets, folder, log=log,
                                       topology=model.topology, jaw=model.jaw, finish=finish)
  ranges = _ranges(config, targets)
  if distributed.is_primary():  # GBS takes milliseconds: process 0 alone solves and writes it.
    for index, (start, stop) in enumerate(ranges):
      path = chunks_lib.result_path(folder, index)
      if not os.path.exists(path):
        files.write_npz(path, compressed=False,
                        **_gbs_chunk(config, model, targets, start, stop))
  distributed.barrier(f'{folder} written')
  return chunks_lib.Chunks(tuple(ranges), tuple(chunks_lib.result_path(folder, index)
                                                for index in range(len(ranges))))


def fit_method(method: str, config, model: FitModel, targets, workdir: str,
               log: Optional[Callable[[str], None]] = print) -> Dict[str, np.ndarray]:
  """Fits one method; returns at least 'frames' (F, V, 3) mm (and jaws for AIM methods), the
  whole sequence in memory (GBS writes no file; AIM keeps its chunks in workdir/<method>)."""
  _check_method(method)
  if method == 'gbs':
    parts = [_gbs_chunk(config, model, targets, start, stop)
             for start, stop in _ranges(config, targets)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  return fit_method_chunks(method, config, model, targets, workdir, log).load()


def config_for_targets(config: ml_collections.ConfigDict, targets
                       ) -> ml_collections.ConfigDict:
  """AIM's settings for these targets: when every target kind is in `loss.field_kinds` (3D
  markers by default), F_W runs at `model.sparse_w0` with the coefficient-field terms; when
  every target is a 2D landmark and `loss.landmark_field_scale` is above 0, F_W runs at
  `model.w0` with the terms at that fraction of their weights; otherwise (dense targets) at
  `model.w0` without them. With dense targets the peak learning rate is
  `train.dense_learning_rate` when set (configs/fit.py says why), and with 2D landmarks alone
  the coefficients' magnitude weight is `loss.landmark_coefficients` when set and the fit runs
  at most `train.landmark_steps` (a longer fit matches the image better and the depth worse).
  With 3D markers the coefficient-field weights are those of `loss.field_reference_markers`
  markers, scaled by that count over the markers given (`field_weight_scale`), and the fit runs
  `train.marker_steps` at `train.marker_learning_rate` when they are set."""
  config = ml_collections.ConfigDict(config.to_dict())
  if 'dense' in targets and config.train.get('dense_learning_rate'):
    config.train.learning_rate = float(config.train.dense_learning_rate)
  landmarks_alone = set(targets) == {'landmarks'}
  if landmarks_alone and config.loss.get('landmark_coefficients') is not None:
    config.loss.coefficients = float(config.loss.landmark_coefficients)
  if landmarks_alone and config.train.get('landmark_steps'):
    config.train.num_steps = min(int(config.train.num_steps), int(config.train.landmark_steps))
  kinds = fit_lib.kinds_of(config, 'field_kinds')
  landmark_scale = float(config.loss.get('landmark_field_scale') or 0.0)
  if landmarks_alone and landmark_scale > 0:
    config.loss.field_kinds = ','.join(sorted(set(kinds) | {'landmarks'}))
    scale = landmark_scale
  elif fit_lib.field_terms_apply(kinds, targets):
    if config.train.get('marker_steps'):
      config.train.num_steps = int(config.train.marker_steps)
    if config.train.get('marker_learning_rate'):
      config.train.learning_rate = float(config.train.marker_learning_rate)
    if config.model.get('sparse_w0'):
      config.model.w0 = float(config.model.sparse_w0)
    scale = field_weight_scale(config, targets)
  else:
    scale = 0.0
  config.loss.coefficient_smooth = float(config.loss.coefficient_smooth) * scale
  config.loss.coefficient_shrink = float(config.loss.coefficient_shrink) * scale
  return config


def field_weight_scale(config: ml_collections.ConfigDict, targets) -> float:
  """`loss.field_reference_markers` over the number of marker points (1 without markers or
  with the reference 0). The data term is a mean over the markers, so with fewer of them the
  same field weights would trust each marker more: held at the reference's balance, the weights
  grow as the markers thin out (ICT identities 0 and 41, 0.3 mm noise, 5 % dropouts, AIM / GBS
  at 30 / 60 / 300 markers: 0.97 / 0.83 / 0.46x -> 0.95 / 0.82 / 0.45x and 1.05 / 0.77 / 0.45x
  -> 0.99 / 0.76 / 0.44x; README)."""
  reference = float(config.loss.get('field_reference_markers') or 0.0)
  if not reference or 'markers' not in targets:
    return 1.0
  return reference / max(targets['markers'].points.count, 1)


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
  """`fit_method_chunks` plus k-fold held-out markers / landmarks (`config.cv`).

  With `cv.folds` >= 2 and sparse targets, every scale of `cv.scales` is cross-validated (fits
  under `workdir/<method>/cv/`, resumable), the scale with the lowest held-out error is kept and
  the method is fitted once more on every observation with it. Without, this is
  `fit_method_chunks`.

  Returns:
    (`fit_method_chunks` of the fit on every observation, held-out report or None): {'folds',
    'seed', 'scales', 'chosen_scale', 'held_out': {kind: summary} of the chosen scale,
    'per_scale': [...]}. (The folds' fits are held in memory, `fit_method`.)
  """
  folds = int(config.cv.folds)
  if folds < 2 or not any(k in cross_validation.SPARSE_KINDS for k in targets):
    return fit_method_chunks(method, config, model, targets, workdir, log), None
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
  result = fit_method_chunks(method, scaled_config(config, method, scales[best]), model,
                             targets, workdir, log)
  return result, {'folds': folds, 'seed': int(config.cv.seed), 'scales': scales,
                  'chosen_scale': scales[best], 'held_out': per_scale[best]['held_out'],
                  'per_scale': per_scale}


def evaluate_methods(results: Dict[str, Dict], truth: Optional[Dict], targets, actor: Actor
                     ) -> Dict:
  """Error of every method: against ground truth frames when given, else against dense targets.

  `evaluate_chunks` of whole in-memory results ({method: {'frames' (F, V, 3) mm, jaws}}).

  Returns {'error_against', 'error_mm': {method: stats}, 'per_frame_mm': {method: (F,)},
  'jaw': {method: jaw_errors}}.
  """
  return evaluate_chunks({m: chunks_lib.in_memory(r) for m, r in results.items()}, truth,
                         targets, actor)


def _load_errors(item) -> np.ndarray:
  return np.load(item) if isinstance(item, str) else item


def evaluate_chunks(results: Dict[str, chunks_lib.Chunks], truth: Optional[Dict], targets,
                    actor: Actor, chunk_frames: int = 0, scratch: Optional[str] = None) -> Dict:
  """`evaluate_methods` of fits held chunk by chunk, in the memory of a chunk.

  The reference (truth['frames'], or the dense targets) and every method's frames are compared
  `chunk_frames` frames at a time (0: all at once); each block of per-vertex errors is kept as
  an .npy file in the folder `scratch` (in memory when None) and summarised by
  `eval.sequence_stats` (exact, block by block), so the numbers do not depend on the chunking.
  The vertices counted are the actor's region where the reference is finite in every frame.

  Args:
    results: {method: chunks of 'frames' (F, V, 3) mm, and 'jaw_rotation' (F, 3, 3),
      'jaw_translation' (F, 3) mm for AIM methods}.
    truth: None or {'frames': (F, V, 3) mm, anything that slices into arrays (an array, a
      memory map, `synthetic_performance.PerformanceFrames`), optionally the true jaws}.
  Returns:
    As `evaluate_methods`.
  """
  if truth is not None:
    reference = lambda start, stop: np.asarray(truth['frames'][start:stop])
    against = 'ground_truth'
  elif 'dense' in targets:
    dense = targets['dense']
    ids = np.asarray(dense.points.vertices[:, 0])

    def reference(start, stop):
      frames = np.full((stop - start, actor.num_vertices, 3), np.nan, np.float32)
      frames[:, ids] = np.asarray(dense.values[start:stop])
      return frames
    against = 'dense_targets'
  else:
    return {'error_against': None, 'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}
  num_frames = next(iter(results.values())).num_frames if results else 0
  finite = np.ones(actor.num_vertices, bool)
  errors = {method: [] for method in results}
  for index, (start, stop) in enumerate(fit_lib.chunk_ranges(num_frames, int(chunk_frames))):
    frames = reference(start, stop)
    finite &= np.all(np.isfinite(frames), axis=(0, 2))
    for method, chunks in results.items():
      block = eval_lib.vertex_errors(chunks.frames(start, stop), frames)
      if scratch is not None:
        path = os.path.join(scratch, f'{method}_{index:05d}.npy')
        np.save(path, block)
        block = path
      errors[method].append(block)
  region = actor.region & finite
  report = {'error_against': against, 'error_mm': {}, 'per_frame_mm': {}}
  for method, blocks in errors.items():
    report['error_mm'][method], report['per_frame_mm'][method] = eval_lib.sequence_stats(
        lambda blocks=blocks: (_load_errors(b)[:, region] for b in blocks))
  jaw_keys = ('jaw_rotation', 'jaw_translation')
  jaws = {m: c.load(jaw_keys) for m, c in results.items() if set(jaw_keys) <= set(c.keys())}
  report['jaw'] = eval_lib.method_jaw_errors(jaws, truth, actor.pivot)
  return report


def parse_methods(config: ml_collections.ConfigDict) -> list:
  """The methods of `config.methods` (comma separated); ValueError naming any unknown one."""
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ValueError(f'config.methods: unknown or no method(s) {unknown}; expected {METHODS}')
  return methods
