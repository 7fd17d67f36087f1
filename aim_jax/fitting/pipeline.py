"""Fit-and-report: what `experiments/fit_sequence.py` runs, as library calls.

learned model (a `learn_model.py` workdir) + targets -> every method of `config.methods` fitted
to the same targets -> per-frame meshes, jaw transforms, codes and coefficients, and with ground
truth `report.json` (error_mm per method, jaw errors), `per_frame.csv`, `per_frame_error.png`
and error-map renders.

Layout under the workdir:
  <method>/fit.npz            frames (F, V, 3) mm, jaw_rotation, jaw_translation, codes,
                              coefficients (F, V, S-1) (AIM methods), weights (F, S-1) (GBS)
  <method>/meshes/frame_XXXX.<fmt>
  <method>/chunk_XXX/         checkpoints and results of each chunk (resume)
  report.json, per_frame.csv, per_frame_error.png, renders/error_maps.png
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import learning
from aim_jax import mesh_io
from aim_jax import viz
from aim_jax.data import load_actor_source
from aim_jax.data.actor import Actor
from aim_jax.fitting import baselines
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import synthetic_targets
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim

METHODS = ('aim', 'aim_global', 'gbs')


@dataclasses.dataclass
class FitModel:
  """A learned model ready for fitting: AIM params and spec, its actor and cached bases."""
  params: Dict
  spec: aim.AIMSpec
  info: Dict
  actor: Actor
  basis: basis_lib.ModelBasis
  gbs_basis: basis_lib.ModelBasis


def actor_of_model(info: Dict) -> Actor:
  """Re-creates the actor a model was learned on, from what `learning.save_model` recorded."""
  config = ml_collections.ConfigDict(info['config'])
  source = info['actor']['source']
  actor = load_actor_source(source, config)
  if actor.num_vertices != info['actor']['num_vertices']:
    raise ValueError(f'{source}: the actor now has {actor.num_vertices} vertices but the model '
                     f'was learned on {info["actor"]["num_vertices"]}')
  return actor


def load_fit_model(model_dir: str, actor: Optional[Actor] = None) -> FitModel:
  """Loads a learned model and evaluates its fields once at the template vertices.

  For an edited model (aim_jax/edit.py) the fields carry the edit, and the GBS baseline uses the
  edited model's shapes instead of the actor's data.
  """
  params, spec, info = learning.load_model(model_dir)
  actor = actor or actor_of_model(info)
  basis = basis_lib.basis_from_model(params, spec, actor.neutral)
  shapes = actor.shapes
  if info.get('edit'):  # An edited model's own shapes stand in for the (unedited) data.
    shapes = aim.evaluate_chunked(params, actor.neutral, spec)['shapes']
  return FitModel(params=params, spec=spec, info=info, actor=actor, basis=basis,
                  gbs_basis=basis_lib.gbs_basis(shapes, actor.neutral, spec))


def synthetic_sequence_targets(config: ml_collections.ConfigDict, actor: Actor):
  """Targets made from the synthetic actor's held-out performance: (targets, ground truth)."""
  from aim_jax.data import synthetic_performance
  s = config.synthetic
  performance = synthetic_performance.make_performance(actor, num_frames=s.num_frames, seed=s.seed)
  frames = performance.frames
  if s.kind == 'dense':
    targets = {'dense': targets_lib.dense_targets(frames, actor.region)}
  elif s.kind == 'markers':
    targets = {'markers': synthetic_targets.markers(
        actor.neutral, actor.faces, actor.region, frames, count=s.num_markers,
        noise_mm=s.marker_noise_mm, seed=s.seed)}
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
  variant = 'global' if method == 'aim_global' else config.model.variant
  spec = fit_lib.fit_spec(config, model.basis.num_coefficients, variant)
  return fit_lib.fit_sequence(config, spec, model.basis, targets, os.path.join(workdir, method),
                              log=log)


def _save_npz(path: str, arrays: Dict[str, np.ndarray]):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path[:-4] + '.tmp.npz'
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


def _write_meshes(folder: str, frames: np.ndarray, faces: np.ndarray, fmt: str):
  os.makedirs(folder, exist_ok=True)
  for j, frame in enumerate(frames):
    mesh_io.write_colored_mesh(os.path.join(folder, f'frame_{j:04d}.{fmt}'), frame, faces)


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
  report = {'error_against': against, 'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}
  for method, result in results.items():
    errors = eval_lib.vertex_errors(result['frames'], reference)[:, region]
    report['error_mm'][method] = eval_lib.stats(errors)
    report['per_frame_mm'][method] = errors.mean(axis=1)
    if truth is not None and 'jaw_rotation' in truth and 'jaw_rotation' in result:
      report['jaw'][method] = eval_lib.jaw_errors(
          result['jaw_rotation'], result['jaw_translation'], truth['jaw_rotation'],
          truth['jaw_translation'], actor.pivot)
  return report


def write_report_outputs(workdir: str, config, actor: Actor, results: Dict, evaluation: Dict,
                         truth: Optional[Dict], report: Dict):
  """report.json, per_frame.csv, per_frame_error.png and error-map renders."""
  with open(os.path.join(workdir, 'report.json.tmp'), 'w') as f:
    json.dump(report, f, indent=1)
  os.replace(os.path.join(workdir, 'report.json.tmp'), os.path.join(workdir, 'report.json'))
  per_frame = evaluation['per_frame_mm']
  if not per_frame:
    return
  with open(os.path.join(workdir, 'per_frame.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    methods = list(per_frame)
    writer.writerow(['frame'] + [f'{m}_mm' for m in methods])
    for j in range(len(per_frame[methods[0]])):
      writer.writerow([j] + [f'{per_frame[m][j]:.5f}' for m in methods])
  viz.plot_per_frame_error(os.path.join(workdir, 'per_frame_error.png'), per_frame,
                           title=f'{actor.name}: mean per-vertex error per frame '
                                 f'(against {evaluation["error_against"]})')
  if not config.output.render or truth is None:
    return
  num_frames = truth['frames'].shape[0]
  chosen = np.unique(np.linspace(0, num_frames - 1, config.output.render_frames).astype(int))
  vmax = max(0.5, float(np.percentile(
      np.concatenate([eval_lib.vertex_errors(results[m]['frames'][chosen],
                                             truth['frames'][chosen]).ravel()
                      for m in results]), 99)))
  panels = []
  for j in chosen:
    panels.append(dict(vertices=truth['frames'][j], faces=actor.faces,
                       title=f'frame {j}: target'))
    for method, result in results.items():
      error = eval_lib.vertex_errors(result['frames'][j], truth['frames'][j])
      panels.append(dict(vertices=result['frames'][j], faces=actor.faces, values=error,
                         cmap='inferno', vmin=0.0, vmax=vmax,
                         title=f'{method} ({error[actor.region].mean():.3f} mm)',
                         label='error mm'))
  viz.render_grid(os.path.join(workdir, 'renders', 'error_maps.png'), panels,
                  ncols=1 + len(results), title='fitted frames: per-vertex error')


def parse_methods(config: ml_collections.ConfigDict) -> list:
  """The methods of `config.methods` (comma separated); ValueError naming any unknown one."""
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ValueError(f'config.methods: unknown or no method(s) {unknown}; expected {METHODS}')
  return methods


def fit_and_report(config: ml_collections.ConfigDict, model: FitModel, targets: Dict,
                   truth: Optional[Dict], workdir: str,
                   log: Optional[Callable[[str], None]] = print) -> Dict:
  """Fits every method of `config.methods` in `workdir` (resuming), writes every output and
  returns the report."""
  methods = parse_methods(config)
  os.makedirs(workdir, exist_ok=True)
  num_frames = next(iter(targets.values())).num_frames
  results, seconds = {}, {}
  for method in methods:
    if log:
      log(f'fitting {method} to {num_frames} frames '
          f'({", ".join(f"{k}: {t.points.count} points" for k, t in targets.items())})')
    start = time.perf_counter()
    results[method] = fit_method(method, config, model, targets, workdir, log)
    seconds[method] = time.perf_counter() - start
    out = os.path.join(workdir, method)
    _save_npz(os.path.join(out, 'fit.npz'), results[method])
    if config.output.meshes:
      _write_meshes(os.path.join(out, 'meshes'), results[method]['frames'], model.actor.faces,
                    config.output.mesh_format)
  evaluation = evaluate_methods(results, truth, targets, model.actor)
  report = {
      'actor': model.actor.name,
      'num_frames': num_frames,
      'targets': {k: {'points': t.points.count} for k, t in targets.items()},
      'error_against': evaluation['error_against'],
      'error_mm': evaluation['error_mm'],
      'jaw': evaluation['jaw'],
      'seconds_this_run': seconds,
      'seconds_per_frame_this_run': {m: s / num_frames for m, s in seconds.items()},
      'config': config.to_dict(),
  }
  write_report_outputs(workdir, config, model.actor, results, evaluation, truth, report)
  if log:
    log(format_report(report))
  return report


def format_report(report: Dict) -> str:
  lines = [f'{report["actor"]}: {report["num_frames"]} frames, error against '
           f'{report["error_against"]}']
  for method, s in report['error_mm'].items():
    line = (f'  {method:10s} mean {s["mean"]:.4f} mm  median {s["median"]:.4f} mm  '
            f'p95 {s["p95"]:.4f} mm')
    if method in report['jaw']:
      jaw = report['jaw'][method]
      line += (f'  jaw {jaw["rotation_deg"]["mean"]:.2f} deg / '
               f'{jaw["displacement_mm"]["mean"]:.2f} mm')
    line += f'  ({report["seconds_per_frame_this_run"][method]:.2f} s/frame)'
    lines.append(line)
  return '\n'.join(lines)
