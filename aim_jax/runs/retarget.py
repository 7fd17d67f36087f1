"""The retargeting run: what `experiments/retarget.py` runs, as one library call.

source and target model directories + a source performance (a fit of the source model, reused
or fitted here, and optionally its dense frames) -> the target performance by AIM retargeting and
by delta transfer (`aim_jax/retarget.py`) -> target_performance.npz, target_jaw.npz, meshes/,
report.json (errors against the target's ground truth when known), per_frame.csv,
per_frame_error.png, renders/strip.png and renders/retarget.gif.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional, Sequence

import ml_collections
import numpy as np
from PIL import Image

from aim_jax import eval as eval_lib
from aim_jax import files, model_dir, viz
from aim_jax import workdir as workdir_lib
from aim_jax.data import actor_json, synthetic_performance
from aim_jax.fitting import io as fit_io
from aim_jax.fitting import methods as methods_lib
from aim_jax.fitting.basis import FitModel
from aim_jax.retarget import RetargetError, check_compatible, delta_transfer, retarget_fit
from aim_jax.runs import fit as fit_run
from aim_jax.runs import reporting


def error_ratio(error: float, baseline: float) -> Optional[float]:
  """error / baseline, or None when the baseline is exact (0 mm: e.g. a model retargeted onto
  itself, where delta transfer reproduces the source)."""
  return float(error) / float(baseline) if baseline > 0 else None


def load_source_fit(fit_dir: str, num_vertices: int, num_coefficients: int) -> Dict:
  """The 'aim' fit of a fitting run's directory (<fit_dir>/aim/fit.npz, or that file), checked.

  Returns:
    'coefficients' (F, V, S-1), 'jaw_rotation' (F, 3, 3), 'jaw_translation' (F, 3) mm,
    'frames' (F, V, 3) mm.
  """
  path = os.path.join(fit_dir, 'aim', 'fit.npz') if os.path.isdir(fit_dir) else fit_dir
  if not os.path.exists(path):
    raise RetargetError(f'{path}: missing; the source fit must be a fitting directory with the '
                        'aim method (or its aim/fit.npz)')
  with np.load(path) as data:
    missing = [k for k in ('coefficients', 'jaw_rotation', 'jaw_translation', 'frames')
               if k not in data]
    if missing:
      raise RetargetError(f'{path}: lacks {missing} (an aim fit has per-point coefficients '
                          'and jaw transforms)')
    fit = {k: np.asarray(data[k]) for k in ('coefficients', 'jaw_rotation', 'jaw_translation',
                                            'frames')}
  shape = fit['coefficients'].shape
  if shape[1:] != (num_vertices, num_coefficients):
    raise RetargetError(f'{path}: coefficients have shape {shape}, but the source model has '
                        f'{num_vertices} vertices and {num_coefficients} expressions')
  return fit



def write_video(path: str, sequences: Sequence[tuple], faces: Sequence[np.ndarray],
                frames: Sequence[int], view='three_quarter', size_px=(240, 260),
                fps: float = 10.0) -> str:
  """An animated GIF (Pillow) of sequences side by side, each at a fixed framing.

  Args:
    sequences: (label, (F, V, 3) frames mm) per panel.
    faces: one (T, 3) per sequence.
    frames: the frame indices shown.
  Returns:
    `path`.
  """
  limits = [viz.render.shared_limits([seq[j] for j in frames], view) for _, seq in sequences]
  images = []
  for j in frames:
    tiles = [viz.render_image(seq[j], f, view=view, size_px=size_px, limits=lim)
             for (_, seq), f, lim in zip(sequences, faces, limits)]
    images.append(Image.fromarray(np.concatenate(tiles, axis=1)))
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps),
                 loop=0)
  return path


def _reference_neutral(model: FitModel) -> np.ndarray:
  """The neutral of an actor for delta transfer: the data neutral, or an edited model's own."""
  if model.edit is not None:
    return np.asarray(model.basis.neutral)
  return np.asarray(model.actor.neutral)


def synthetic_recipe(config, fit_dir: Optional[str]) -> tuple:
  """(num_frames, seed) of the synthetic recipe a retargeting plays: the source fit's own (its
  report.json's config) when `fit_dir` has one, else `config.fit.synthetic`'s."""
  s = config.fit.synthetic
  num_frames, seed = s.num_frames, s.seed
  report_path = os.path.join(fit_dir, 'report.json') if fit_dir else None
  if report_path and os.path.exists(report_path):
    fit_config = files.read_json(report_path).get('config', {}).get('synthetic', {})
    num_frames = fit_config.get('num_frames', num_frames)
    seed = fit_config.get('seed', seed)
  return num_frames, seed


def _synthetic_truths(config, source_model: FitModel, target_model: FitModel,
                      fit_dir: Optional[str], log):
  """Source and target ground truth of the synthetic recipe (same controls on each actor)."""
  num_frames, seed = synthetic_recipe(config, fit_dir)
  weights, names = synthetic_performance.performance_controls(num_frames, seed)
  out = {}
  for side, model in (('source', source_model), ('target', target_model)):
    if model.actor.ground_truth is None or model.edit is not None:
      out[side] = None
      continue
    p = synthetic_performance.perform(model.actor, weights, names)
    out[side] = {'frames': p.frames, 'jaw_rotation': p.jaw_rotation,
                 'jaw_translation': p.jaw_translation}
  if log:
    log(f'synthetic recipe: {num_frames} frames, seed {seed}, played on both actors')
  return out['source'], out['target']


def _dense_frames(path: str, num_vertices: int, units: str) -> Optional[np.ndarray]:
  """Dense frames of a source file input (folder of meshes or npz with `frames`), else None."""
  if os.path.isdir(path):
    return fit_io.read_mesh_frames(path, num_vertices, actor_json.UNITS_TO_MM[units])
  if not os.path.exists(path):
    raise RetargetError(f'{path}: no such source frames file or folder')
  if not path.lower().endswith('.npz'):
    raise RetargetError(f'{path}: unknown source frames format; expected "synthetic", a folder '
                        'of .obj/.ply frames or an .npz')
  with np.load(path) as data:
    if 'frames' not in data:
      return None
    scale = actor_json.UNITS_TO_MM.get(str(data['units']) if 'units' in data else 'mm', 1.0)
    return np.asarray(data['frames'], np.float32) * scale


def load_pair(source_dir: str, target_dir: str) -> tuple:
  """Both models, each loaded once, checked to share the topology and the learning shapes.

  Returns:
    (source FitModel, target FitModel).
  Raises:
    RetargetError (mismatched models), FileNotFoundError (not a model directory).
  """
  source, target = model_dir.load_model(source_dir), model_dir.load_model(target_dir)
  check_compatible(source.info, target.info, source_dir, target_dir)
  source, target = model_dir.fit_model(source), model_dir.fit_model(target)
  if source.actor.faces.shape != target.actor.faces.shape or not np.array_equal(
      source.actor.faces, target.actor.faces):
    raise RetargetError(f'{target_dir}: the target actor\'s triangles differ from the source\'s '
                        f'({source_dir}); retargeting needs actors in one topology')
  return source, target


def _file_source_truth(source_frames: str, dense: np.ndarray, num_vertices: int) -> Dict:
  """What the source fit is measured against when the source frames are a file: the frames,
  with the jaw transforms when the npz has them."""
  if source_frames.lower().endswith('.npz'):
    with np.load(source_frames) as data:
      if 'jaw_rotation' in data and 'jaw_translation' in data:
        return fit_io.read_ground_truth(source_frames, num_vertices, dense.shape[0])
  return {'frames': dense}


def _fit_source(config, source: FitModel, source_dir: str, source_frames: str, units: str,
                workdir: str, log) -> str:
  """Fits the source model ('aim' only) to the source frames in workdir/source_fit."""
  fit_config = ml_collections.ConfigDict(config.fit.to_dict())
  fit_config.methods = 'aim'
  if source_frames == 'synthetic':
    targets, truth = methods_lib.synthetic_sequence_targets(fit_config, source.actor)
  else:
    targets, truth = fit_io.read_targets(source_frames, source.actor.faces,
                                         source.actor.num_vertices, units)
  fit_dir = os.path.join(workdir, 'source_fit')
  if log:
    log(f'fitting the source model {source_dir} to {source_frames} in {fit_dir}')
  fit_run.fit_and_report(fit_config, source, targets, truth, fit_dir, log=log)
  return fit_dir


def _write_performance(workdir: str, config, aim_result: Dict, delta: np.ndarray, fit: Dict,
                       source: FitModel, target: FitModel):
  """target_performance.npz, target_jaw.npz and meshes/ (the AIM target frames)."""
  files.write_npz(os.path.join(workdir, 'target_performance.npz'), frames=aim_result['frames'],
                  jaw_rotation=aim_result['jaw_rotation'],
                  jaw_translation=aim_result['jaw_translation'],
                  delta_transfer_frames=delta, units=np.array('mm'))
  files.write_npz(os.path.join(workdir, 'target_jaw.npz'), rotation=aim_result['jaw_rotation'],
                  translation=aim_result['jaw_translation'],
                  pivot=np.asarray(target.spec.pivot, np.float32),
                  source_rotation=fit['jaw_rotation'], source_translation=fit['jaw_translation'],
                  source_pivot=np.asarray(source.spec.pivot, np.float32), units=np.array('mm'))
  if config.output.meshes:
    reporting.write_mesh_sequence(os.path.join(workdir, 'meshes'), aim_result['frames'],
                                  target.actor.faces, config.output.mesh_format)


def _render(workdir: str, config, source: FitModel, target: FitModel, dense_source: np.ndarray,
            aim_result: Dict, delta: np.ndarray, target_truth: Optional[Dict], title: str):
  """renders/strip.png and renders/retarget.gif."""
  num_frames = aim_result['frames'].shape[0]
  chosen = np.unique(np.linspace(0, num_frames - 1, config.output.strip_frames).astype(int))
  truth_frames = None if target_truth is None else target_truth['frames']
  rows = [(f'source {source.actor.name}', dense_source, source.actor.faces, False),
          ('AIM retarget', aim_result['frames'], None, True),
          ('delta transfer', delta, None, True)]
  if truth_frames is not None:
    rows.append(('target truth', truth_frames, None, False))
  reporting.render_strip(os.path.join(workdir, 'renders', 'strip.png'), rows,
                         target.actor.faces, chosen, truth_frames, view=config.output.view,
                         title=title)
  if config.output.video_frames > 0:
    shown = np.unique(np.linspace(0, num_frames - 1, min(num_frames, config.output.video_frames)
                                  ).astype(int))
    write_video(os.path.join(workdir, 'renders', 'retarget.gif'),
                [('source', dense_source), ('target', aim_result['frames'])],
                [source.actor.faces, target.actor.faces], shown, view=config.output.view,
                fps=config.output.video_fps)


def run_retarget(config: ml_collections.ConfigDict, source_dir: str, target_dir: str,
                 workdir: str, source_fit: Optional[str] = None,
                 source_frames: Optional[str] = None, ground_truth: str = 'auto',
                 units: str = 'mm', log: Optional[Callable[[str], None]] = print) -> Dict:
  """Retargets a source performance onto a target model and writes every output.

  Args:
    config: configs/retarget.py (config.fit: the fitting config used when fitting the source).
    source_dir, target_dir: model directories (learned or edited).
    workdir: where outputs go.
    source_fit: a fitting directory of the source model (reused), or None to fit.
    source_frames: 'synthetic' (the source actor's synthetic performance), a folder of meshes or
      an npz (fit_io formats); fitted when `source_fit` is None, and used as the delta-transfer
      source when dense.
    ground_truth: 'auto' (synthetic pairs: the same recipe on the target actor), 'none', or a
      folder / npz of target frames (with `jaw_rotation`, `jaw_translation` about the target
      pivot when known).
  Returns:
    The report (also written to workdir/report.json).
  Raises:
    RetargetError, fit_io.TargetError, FileNotFoundError, ValueError: bad input (one line).
  """
  if source_fit is None and source_frames is None:
    raise RetargetError('retargeting needs a source fit (a fitting directory) or source frames')
  workdir_lib.check_usable(workdir)
  with workdir_lib.Lock(workdir, log):
    return _run_retarget(config, source_dir, target_dir, workdir, source_fit, source_frames,
                         ground_truth, units, log)


def _run_retarget(config, source_dir, target_dir, workdir, source_fit, source_frames,
                  ground_truth, units, log) -> Dict:
  say = log or (lambda line: None)
  source, target = load_pair(source_dir, target_dir)

  # The source performance: frames (for delta transfer) and its fit.
  synthetic_frames = source_frames == 'synthetic'
  source_truth = target_truth = None
  if synthetic_frames:
    if source.actor.ground_truth is None:
      raise RetargetError(f'{source_dir}: synthetic source frames need a model learned on a '
                          'synthetic actor')
    source_truth, target_truth = _synthetic_truths(config, source, target, source_fit, say)
  dense_source = source_truth['frames'] if source_truth is not None else None
  if source_frames is not None and not synthetic_frames:
    dense_source = _dense_frames(source_frames, source.actor.num_vertices, units)
    if dense_source is not None:  # The source fit is then measured against its own frames.
      source_truth = _file_source_truth(source_frames, dense_source, source.actor.num_vertices)
  if source_fit is None:
    source_fit = _fit_source(config, source, source_dir, source_frames, units, workdir, log)
  fit = load_source_fit(source_fit, source.basis.num_vertices, source.basis.num_coefficients)
  num_frames = fit['coefficients'].shape[0]
  if dense_source is not None and dense_source.shape[0] != num_frames:
    raise RetargetError(f'{source_frames or source_fit}: {dense_source.shape[0]} source frames '
                        f'but the fit has {num_frames}')
  delta_from = 'source frames' if dense_source is not None else 'fitted source frames'
  if dense_source is None:
    dense_source = fit['frames']

  # Ground truth of the target performance.
  if ground_truth not in ('auto', 'none'):
    target_truth = fit_io.read_ground_truth(ground_truth, target.actor.num_vertices, num_frames)
  elif ground_truth == 'none':
    target_truth = None
  if target_truth is not None and target_truth['frames'].shape[0] != num_frames:
    raise RetargetError(f'ground truth has {target_truth["frames"].shape[0]} frames but the '
                        f'source fit has {num_frames}')

  # Retarget, and the baseline.
  aim_result = retarget_fit(fit, target.basis, config.jaw.translation_scale)
  delta = delta_transfer(dense_source, _reference_neutral(source), _reference_neutral(target))
  _write_performance(workdir, config, aim_result, delta, fit, source, target)

  report = {
      'source_model': source_dir, 'target_model': target_dir, 'source_fit': source_fit,
      'source_actor': source.actor.name, 'target_actor': target.actor.name,
      'num_frames': num_frames, 'num_vertices': int(target.actor.num_vertices),
      'pivot_mm': {'source': list(source.spec.pivot), 'target': list(target.spec.pivot)},
      'delta_transfer_from': delta_from,
      'ground_truth': None if target_truth is None else (
          'synthetic recipe on the target actor' if ground_truth == 'auto' else ground_truth),
  }
  if source_truth is not None:
    src = eval_lib.sequence_errors({'source_fit': fit}, source_truth['frames'],
                                   source.actor.region, source_truth,
                                   np.asarray(source.spec.pivot))
    report['source_fit_error_mm'] = src['error_mm']['source_fit']
    report['source_fit_jaw'] = src['jaw'].get('source_fit')
  per_frame = {}
  if target_truth is not None:
    results = {'aim': aim_result, 'delta_transfer': {'frames': delta}}
    evaluation = eval_lib.sequence_errors(results, target_truth['frames'], target.actor.region,
                                          target_truth, np.asarray(target.spec.pivot))
    report['error_mm'] = evaluation['error_mm']
    report['jaw'] = evaluation['jaw']
    report['aim_over_delta_transfer'] = error_ratio(evaluation['error_mm']['aim']['mean'],
                                                    evaluation['error_mm']['delta_transfer']['mean'])
    per_frame = evaluation['per_frame_mm']
  report['config'] = config.to_dict()
  files.write_json(os.path.join(workdir, 'report.json'), report)
  if per_frame:
    reporting.write_per_frame(workdir, per_frame,
                              title=f'{source.actor.name} -> {target.actor.name}: retargeting '
                                    'error per frame')
  if config.output.render:
    _render(workdir, config, source, target, dense_source, aim_result, delta, target_truth,
            title=f'{os.path.basename(os.path.normpath(source_dir))} -> '
                  f'{os.path.basename(os.path.normpath(target_dir))}')
  say(format_report(report))
  return report


def format_report(report: Dict) -> str:
  """A few human-readable lines of a retargeting report."""
  lines = [f'{report["source_model"]} ({report["source_actor"]}) -> {report["target_model"]} '
           f'({report["target_actor"]}): {report["num_frames"]} frames, ground truth: '
           f'{report["ground_truth"]}']
  if 'source_fit_error_mm' in report:
    lines.append(f'  source fit    mean {report["source_fit_error_mm"]["mean"]:.4f} mm')
  return '\n'.join(lines + reporting.error_table(report.get('error_mm', {}),
                                                 report.get('jaw', {}), 14))
