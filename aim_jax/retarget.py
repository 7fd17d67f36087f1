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
"""

from __future__ import annotations

import csv
import json
import os
from typing import Callable, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import mesh_io
from aim_jax import viz
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
# Checks and evaluation.


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


def load_source_fit(fit_dir: str, num_vertices: int, num_coefficients: int) -> Dict:
  """The 'aim' fit of a fit_sequence.py workdir: <fit_dir>/aim/fit.npz, checked."""
  path = os.path.join(fit_dir, 'aim', 'fit.npz') if os.path.isdir(fit_dir) else fit_dir
  if not os.path.exists(path):
    raise RetargetError(f'{path}: missing; --source_fit must be a fit_sequence.py workdir '
                        'with the aim method (or its aim/fit.npz)')
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


def evaluate(results: Dict[str, Dict], truth: Dict, region: np.ndarray,
             pivot: np.ndarray) -> Dict:
  """Errors of every method's target frames against ground truth (and jaw errors).

  Args:
    results: {method: {'frames' (F, V, 3), optionally 'jaw_rotation', 'jaw_translation'}}.
    truth: 'frames' (F, V, 3) mm, optionally 'jaw_rotation' (F, 3, 3), 'jaw_translation'.
    region: (V,) bool, the vertices counted.
    pivot: (3,) mm the target pivot.
  Returns:
    {'error_mm': {method: stats}, 'per_frame_mm': {method: (F,)}, 'jaw': {method: errors}}.
  """
  report = {'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}
  for method, result in results.items():
    errors = eval_lib.vertex_errors(result['frames'], truth['frames'])[:, region]
    report['error_mm'][method] = eval_lib.stats(errors)
    report['per_frame_mm'][method] = errors.mean(axis=1)
    if 'jaw_rotation' in truth and 'jaw_rotation' in result:
      report['jaw'][method] = eval_lib.jaw_errors(
          result['jaw_rotation'], result['jaw_translation'], truth['jaw_rotation'],
          truth['jaw_translation'], pivot)
  return report


# -------------------------------------------------------------------------------------------
# Pictures.


def render_strip(path: str, rows: Sequence[tuple], faces: np.ndarray, frames: Sequence[int],
                 truth: Optional[np.ndarray] = None, view='three_quarter',
                 title: Optional[str] = None) -> str:
  """A PNG grid: one column per chosen frame, one row per sequence (source, target(s), truth).

  Args:
    rows: (label, (F, V, 3) frames, faces or None, compare) per row; rows with compare=True are
      coloured by their error against `truth` when given (one colour scale for all).
    frames: the chosen frame indices.
  """
  vmax = None
  if truth is not None:
    errs = [eval_lib.vertex_errors(seq[list(frames)], truth[list(frames)])
            for _, seq, _, compare in rows if compare]
    vmax = max(0.5, float(np.percentile(np.concatenate([e.ravel() for e in errs]), 99))) if errs \
        else None
  panels = []
  for label, seq, row_faces, compare in rows:
    for j in frames:
      panel = dict(vertices=seq[j], faces=faces if row_faces is None else row_faces, view=view,
                   title=f'{label}, frame {j}')
      if compare and truth is not None:
        error = eval_lib.vertex_errors(seq[j], truth[j])
        panel.update(values=error, cmap='inferno', vmin=0.0, vmax=vmax, label='error mm',
                     title=f'{label}, frame {j} ({error.mean():.2f} mm)')
      panels.append(panel)
  return viz.render_grid(path, panels, ncols=len(frames), title=title, panel_px=(280, 330))


def write_video(path: str, sequences: Sequence[tuple], faces: Sequence[np.ndarray],
                frames: Sequence[int], view='three_quarter', size_px=(240, 260),
                fps: float = 10.0) -> Optional[str]:
  """An animated GIF (Pillow) of sequences side by side, each at a fixed framing.

  Args:
    sequences: (label, (F, V, 3) frames) per panel.
    faces: one (F, 3) per sequence.
    frames: the frame indices shown.
  Returns:
    `path`, or None when Pillow is missing.
  """
  try:
    from PIL import Image  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
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


# -------------------------------------------------------------------------------------------
# The whole run (what experiments/retarget.py calls).


def _save_npz(path: str, **arrays):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path[:-4] + '.tmp.npz'
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


def _reference_neutral(model) -> np.ndarray:
  """The neutral of an actor for delta transfer: the data neutral, or an edited model's own."""
  if model.info.get('edit'):
    return np.asarray(model.basis.neutral)
  return np.asarray(model.actor.neutral)


def _synthetic_truths(config, source_model, target_model, fit_dir: Optional[str], log):
  """Source and target ground truth of the synthetic recipe (same controls on each actor)."""
  from aim_jax.data import synthetic_performance  # pylint: disable=import-outside-toplevel
  s = config.fit.synthetic
  num_frames, seed = s.num_frames, s.seed
  report_path = os.path.join(fit_dir, 'report.json') if fit_dir else None
  if report_path and os.path.exists(report_path):
    with open(report_path) as f:
      fit_config = json.load(f).get('config', {}).get('synthetic', {})
    num_frames = fit_config.get('num_frames', num_frames)
    seed = fit_config.get('seed', seed)
  weights, names = synthetic_performance.performance_controls(num_frames, seed)
  out = {}
  for side, model in (('source', source_model), ('target', target_model)):
    if model.actor.ground_truth is None or model.info.get('edit'):
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
  from aim_jax.data import actor_json  # pylint: disable=import-outside-toplevel
  from aim_jax.fitting import io as fit_io  # pylint: disable=import-outside-toplevel
  if os.path.isdir(path):
    return fit_io.read_mesh_frames(path, num_vertices, actor_json.UNITS_TO_MM[units])
  if not os.path.exists(path):
    raise RetargetError(f'{path}: no such file or folder (--source_frames)')
  if not path.lower().endswith('.npz'):
    raise RetargetError(f'{path}: unknown source frames format; expected "synthetic", a folder '
                        'of .obj/.ply frames or an .npz')
  with np.load(path) as data:
    if 'frames' not in data:
      return None
    scale = actor_json.UNITS_TO_MM.get(str(data['units']) if 'units' in data else 'mm', 1.0)
    return np.asarray(data['frames'], np.float32) * scale


def run_retarget(config: ml_collections.ConfigDict, source_dir: str, target_dir: str,
                 workdir: str, source_fit: Optional[str] = None,
                 source_frames: Optional[str] = None, ground_truth: str = 'auto',
                 units: str = 'mm', log: Optional[Callable[[str], None]] = print) -> Dict:
  """Retargets a source performance onto a target model and writes every output.

  Args:
    config: configs/retarget.py (config.fit: the fitting config used when fitting the source).
    source_dir, target_dir: model workdirs (learn_model.py or edit_anatomy.py).
    workdir: where outputs go.
    source_fit: a fit_sequence.py workdir of the source model (reused), or None to fit.
    source_frames: 'synthetic' (the source actor's synthetic performance), a folder of meshes or
      an npz (fit_sequence.py formats); fitted when `source_fit` is None, and used as the
      delta-transfer source when dense.
    ground_truth: 'auto' (synthetic pairs: the same recipe on the target actor), 'none', or a
      folder / npz of target frames (with `jaw_rotation`, `jaw_translation` about the target
      pivot when known).
  Returns:
    The report (also written to workdir/report.json).
  Raises:
    RetargetError, fit_io.TargetError, FileNotFoundError, ValueError: bad input (one line).
  """
  from aim_jax.fitting import io as fit_io  # pylint: disable=import-outside-toplevel
  from aim_jax.fitting import pipeline  # pylint: disable=import-outside-toplevel
  say = log or (lambda line: None)
  for d in (source_dir, target_dir):
    if not os.path.exists(os.path.join(d, 'model.json')):
      raise RetargetError(f'{os.path.join(d, "model.json")}: missing; not a model workdir')
  if source_fit is None and source_frames is None:
    raise RetargetError('give --source_fit (a fit_sequence.py workdir) or --source_frames')
  with open(os.path.join(source_dir, 'model.json')) as f:
    source_info = json.load(f)
  with open(os.path.join(target_dir, 'model.json')) as f:
    target_info = json.load(f)
  check_compatible(source_info, target_info, source_dir, target_dir)
  source = pipeline.load_fit_model(source_dir)
  target = pipeline.load_fit_model(target_dir)
  if source.actor.faces.shape != target.actor.faces.shape or not np.array_equal(
      source.actor.faces, target.actor.faces):
    raise RetargetError(f'{target_dir}: the target actor\'s triangles differ from the source\'s '
                        f'({source_dir}); retargeting needs actors in one topology')
  os.makedirs(workdir, exist_ok=True)

  # The source performance: frames (for delta transfer) and its fit.
  synthetic = source_frames == 'synthetic'
  source_truth = target_truth = None
  if synthetic:
    if source.actor.ground_truth is None:
      raise RetargetError(f'{source_dir}: --source_frames=synthetic needs a model learned on a '
                          'synthetic actor')
    source_truth, target_truth = _synthetic_truths(config, source, target, source_fit, say)
  dense_source = source_truth['frames'] if source_truth is not None else None
  if source_frames is not None and not synthetic:
    dense_source = _dense_frames(source_frames, source.actor.num_vertices, units)
    if dense_source is not None:  # The source fit is then measured against its own frames.
      source_truth = {'frames': dense_source}
      if source_frames.lower().endswith('.npz'):
        with np.load(source_frames) as data:
          if 'jaw_rotation' in data and 'jaw_translation' in data:
            source_truth = fit_io.read_ground_truth(source_frames, source.actor.num_vertices,
                                                    dense_source.shape[0])
  if source_fit is None:
    fit_config = ml_collections.ConfigDict(config.fit.to_dict())
    fit_config.methods = 'aim'
    if synthetic:
      targets, truth = pipeline.synthetic_sequence_targets(fit_config, source.actor)
    else:
      targets, truth = fit_io.read_targets(source_frames, source.actor.faces,
                                           source.actor.num_vertices, units)
    source_fit = os.path.join(workdir, 'source_fit')
    say(f'fitting the source model {source_dir} to {source_frames} in {source_fit}')
    pipeline.fit_and_report(fit_config, source, targets, truth, source_fit, log=log)
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
  results = {'aim': aim_result, 'delta_transfer': {'frames': delta}}
  _save_npz(os.path.join(workdir, 'target_performance.npz'), frames=aim_result['frames'],
            jaw_rotation=aim_result['jaw_rotation'],
            jaw_translation=aim_result['jaw_translation'],
            delta_transfer_frames=delta, units=np.array('mm'))
  _save_npz(os.path.join(workdir, 'target_jaw.npz'), rotation=aim_result['jaw_rotation'],
            translation=aim_result['jaw_translation'],
            pivot=np.asarray(target.spec.pivot, np.float32),
            source_rotation=fit['jaw_rotation'], source_translation=fit['jaw_translation'],
            source_pivot=np.asarray(source.spec.pivot, np.float32), units=np.array('mm'))
  if config.output.meshes:
    folder = os.path.join(workdir, 'meshes')
    os.makedirs(folder, exist_ok=True)
    for j, frame in enumerate(aim_result['frames']):
      mesh_io.write_colored_mesh(os.path.join(folder, f'frame_{j:04d}.{config.output.mesh_format}'),
                                 frame, target.actor.faces)

  region = target.actor.region
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
    src = evaluate({'source_fit': fit}, source_truth, source.actor.region,
                   np.asarray(source.spec.pivot))
    report['source_fit_error_mm'] = src['error_mm']['source_fit']
    report['source_fit_jaw'] = src['jaw'].get('source_fit')
  per_frame = {}
  if target_truth is not None:
    evaluation = evaluate(results, target_truth, region, np.asarray(target.spec.pivot))
    report['error_mm'] = evaluation['error_mm']
    report['jaw'] = evaluation['jaw']
    report['aim_over_delta_transfer'] = (evaluation['error_mm']['aim']['mean']
                                         / evaluation['error_mm']['delta_transfer']['mean'])
    per_frame = evaluation['per_frame_mm']
  report['config'] = config.to_dict()
  with open(os.path.join(workdir, 'report.json'), 'w') as f:
    json.dump(report, f, indent=1)
  if per_frame:
    with open(os.path.join(workdir, 'per_frame.csv'), 'w', newline='') as f:
      writer = csv.writer(f)
      writer.writerow(['frame'] + [f'{m}_mm' for m in per_frame])
      for j in range(num_frames):
        writer.writerow([j] + [f'{per_frame[m][j]:.5f}' for m in per_frame])
    viz.plot_per_frame_error(os.path.join(workdir, 'per_frame_error.png'), per_frame,
                             title=f'{source.actor.name} -> {target.actor.name}: retargeting '
                                   'error per frame')

  if config.output.render:
    chosen = np.unique(np.linspace(0, num_frames - 1, config.output.strip_frames).astype(int))
    truth_frames = None if target_truth is None else target_truth['frames']
    rows = [(f'source {source.actor.name}', dense_source, source.actor.faces, False),
            ('AIM retarget', aim_result['frames'], None, True),
            ('delta transfer', delta, None, True)]
    if truth_frames is not None:
      rows.append(('target truth', truth_frames, None, False))
    render_strip(os.path.join(workdir, 'renders', 'strip.png'), rows, target.actor.faces,
                 chosen, truth_frames, view=config.output.view,
                 title=f'{os.path.basename(os.path.normpath(source_dir))} -> '
                       f'{os.path.basename(os.path.normpath(target_dir))}')
    if config.output.video_frames > 0:
      shown = np.unique(np.linspace(0, num_frames - 1, min(num_frames,
                                                           config.output.video_frames)
                                    ).astype(int))
      write_video(os.path.join(workdir, 'renders', 'retarget.gif'),
                  [('source', dense_source), ('target', aim_result['frames'])],
                  [source.actor.faces, target.actor.faces], shown, view=config.output.view,
                  fps=config.output.video_fps)
  say(format_report(report))
  return report


def format_report(report: Dict) -> str:
  lines = [f'{report["source_model"]} ({report["source_actor"]}) -> {report["target_model"]} '
           f'({report["target_actor"]}): {report["num_frames"]} frames, ground truth: '
           f'{report["ground_truth"]}']
  if 'source_fit_error_mm' in report:
    lines.append(f'  source fit    mean {report["source_fit_error_mm"]["mean"]:.4f} mm')
  for method, s in report.get('error_mm', {}).items():
    line = (f'  {method:14s} mean {s["mean"]:.4f} mm  median {s["median"]:.4f} mm  '
            f'p95 {s["p95"]:.4f} mm')
    if method in report.get('jaw', {}):
      jaw = report['jaw'][method]
      line += (f'  jaw {jaw["rotation_deg"]["mean"]:.2f} deg / '
               f'{jaw["displacement_mm"]["mean"]:.2f} mm')
    lines.append(line)
  return '\n'.join(lines)
