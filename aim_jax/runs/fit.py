"""Fit-and-report: what `experiments/fit_sequence.py` runs, as one library call.

learned model (`model_dir.load_fit_model`) + targets -> every method of `config.methods` fitted
to the same targets (`fitting/methods.py`) -> per-frame meshes, jaw transforms, codes and
coefficients, and with ground truth `report.json` (error_mm per method, jaw errors),
`per_frame.csv`, `per_frame_error.png` and error-map renders.

Layout under the workdir:
  <method>/fit.npz            frames (F, V, 3) mm, jaw_rotation, jaw_translation, codes,
                              coefficients (F, V, S-1) (AIM methods), weights (F, S-1) (GBS)
  <method>/meshes/frame_XXXX.<fmt>
  <method>/chunk_XXX/         results (result.npz) of each chunk of `train.chunk_frames` frames,
                              and the AIM methods' checkpoints (resume)
  <method>/performance.usdc   when asked (`usd_fps`; `usd_export.write_performance`; the error
                              primvars against the ground truth when there is one)
  report.json, per_frame.csv, per_frame_error.png, renders/error_maps.png

Memory is bounded by a chunk, not by the sequence: every method is fitted chunk by chunk
(`methods.fit_method_chunks`), fit.npz is assembled from the chunk files an array and a chunk at
a time (`files.write_npz_chunks`), the meshes are written and the errors measured a chunk at a
time (`methods.evaluate_chunks`), and the synthetic ground truth is played a chunk at a time
(`synthetic_performance.PerformanceFrames`). USD export (`usd_fps`) holds a whole method's fit.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import distributed, files, train_loop, usd_export
from aim_jax import model_dir as model_dir_lib
from aim_jax import workdir as workdir_lib
from aim_jax.data.actor import Actor
from aim_jax.fitting import chunks as chunks_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import io as fit_io
from aim_jax.fitting import methods as methods_lib
from aim_jax.fitting import plausibility, refinement
from aim_jax.fitting.basis import FitModel
from aim_jax.runs import identity as identity_lib
from aim_jax.runs import reporting

USD_FILE = 'performance.usdc'  # <method>/performance.usdc when `usd_fps` is given.


def read_sequence(config: ml_collections.ConfigDict, actor: Actor, targets: str,
                  ground_truth: Optional[str] = None, units: str = 'mm',
                  stream: bool = False) -> tuple:
  """The targets of a fitting run and their ground truth (None when unknown).

  Args:
    targets: 'synthetic' (the synthetic actor's held-out performance, `config.synthetic`), a
      folder of OBJ/PLY frames in the actor's topology, or an npz (`fitting/io.py` formats).
    ground_truth: optional ground-truth frames (folder or npz), replacing the synthetic truth.
    units: units of a folder of frames ('mm', 'cm' or 'm').
    stream: the synthetic truth's frames played on demand (`methods.synthetic_sequence_targets`)
      instead of an array.
  Returns:
    (targets {kind: TargetSet}, truth dict or None).
  Raises:
    fit_io.TargetError, ValueError: bad input, one line naming the file.
  """
  if targets == 'synthetic':
    if actor.ground_truth is None:
      raise fit_io.TargetError(f'{actor.source or actor.name}: synthetic targets need a model '
                               'learned on the synthetic actor')
    sequence, truth = methods_lib.synthetic_sequence_targets(config, actor, stream)
  else:
    sequence, truth = fit_io.read_targets(targets, actor.faces, actor.num_vertices, units,
                                          actor.source_vertex_ids)
  if ground_truth:
    num_frames = next(iter(sequence.values())).num_frames
    truth = fit_io.read_ground_truth(ground_truth, actor.num_vertices, num_frames,
                                     actor.source_vertex_ids)
  return sequence, truth


def check_config(config: ml_collections.ConfigDict):
  """ValueError (one line) for fitting settings that cannot work, before anything is loaded."""
  methods_lib.parse_methods(config)
  train_loop.loop_options(config.train)
  fit_lib.OptimizerSettings.from_config(config)  # train.spike_clip.
  for name in ('points_per_step', 'chunk_frames'):
    if int(config.train[name]) < 0:
      raise ValueError(f'train.{name} must be >= 0 (0: all), got {config.train[name]}')
  for variant in ('global', config.model.variant):
    fit_lib.fit_spec(config, 1, variant)  # Activation, variant and sizes.
  folds = int(config.cv.folds)
  if folds < 0 or folds == 1:
    raise ValueError(f'cv.folds must be 0 (off) or >= 2, got {folds}')
  methods_lib.parse_scales(config.cv.scales)
  for name in ('markers_mm', 'landmarks_px'):
    if not float(config.noise[name]) >= 0:
      raise ValueError(f'noise.{name} must be >= 0, got {config.noise[name]}')
  scale = float(config.loss.get('landmark_field_scale', 0.0))
  if not 0.0 <= scale < float('inf'):
    raise ValueError(f'loss.landmark_field_scale must be >= 0 (0: off), got {scale}')
  refinement.check_settings(config)
  for name in ('landmark_steps', 'marker_steps'):
    if int(config.train.get(name, 0)) < 0:
      raise ValueError(f'train.{name} must be >= 0 (0: train.num_steps), got '
                       f'{config.train[name]}')
  if not float(config.train.get('marker_learning_rate', 0.0)) >= 0:
    raise ValueError(f'train.marker_learning_rate must be >= 0 (0: train.learning_rate), got '
                     f'{config.train.marker_learning_rate}')
  if not float(config.loss.get('field_reference_markers', 0)) >= 0:
    raise ValueError('loss.field_reference_markers must be >= 0 (0: weights as given), got '
                     f'{config.loss.field_reference_markers}')


def check_usd(usd_fps: Optional[float]):
  """Fails in one line, before anything runs, when USD is asked for (`usd_fps` not None) and
  usd-core is missing or the frame rate is not positive."""
  if usd_fps is None:
    return
  usd_export.require_usd()
  if not float(usd_fps) > 0:
    raise ValueError(f'the USD frame rate must be > 0 frames per second, got {usd_fps}')


def run_fit(config: ml_collections.ConfigDict, model_dir: str, targets: str, workdir: str,
            ground_truth: Optional[str] = None, units: str = 'mm',
            log: Optional[Callable[[str], None]] = print, restart: bool = False,
            usd_fps: Optional[float] = None) -> Dict:
  """Loads the model directory and the targets (`read_sequence`), checks them against each other
  (`fitting/plausibility.py`), then `fit_and_report` in the locked workdir.

  The methods, step counts and intervals are checked before the model is loaded, so a typo
  fails fast. A workdir holding a fit of another model, other targets or another config is
  refused (`workdir.WorkdirError`) unless `restart`, which moves the old fit aside. With
  `usd_fps` each method's fit is also written as USD at that frame rate (usd-core missing:
  UsdExportError before anything is loaded).
  """
  check_config(config)
  check_usd(usd_fps)
  model = model_dir_lib.load_fit_model(model_dir)
  sequence, truth = read_sequence(config, model.actor, targets, ground_truth, units, stream=True)
  plausibility.check_targets(sequence, model.actor.neutral,
                             'synthetic targets' if targets == 'synthetic' else targets)
  identity = identity_lib.fitting_identity(config, model_dir, sequence, truth)
  if not distributed.is_primary():  # Several processes (aim_jax/distributed.py): 0 speaks.
    log = None
  # Process 0 locks and claims the workdir for every process of the run.
  with distributed.entered_by_primary(
      lambda: workdir_lib.open_run(workdir, identity, restart=restart, log=log),
      f'opening {workdir}'):
    return fit_and_report(config, model, sequence, truth, workdir, log=log, usd_fps=usd_fps)


def write_report_outputs(workdir: str, config, actor: Actor,
                         results: Dict[str, chunks_lib.Chunks], evaluation: Dict,
                         truth: Optional[Dict], report: Dict):
  """report.json, per_frame.csv, per_frame_error.png and error-map renders (of the chosen frames
  only, read from each method's chunks and from truth['frames'])."""
  files.write_json(os.path.join(workdir, 'report.json'), report)
  per_frame = evaluation['per_frame_mm']
  if not per_frame:
    return
  reporting.write_per_frame(workdir, per_frame,
                            title=f'{actor.name}: mean per-vertex error per frame '
                                  f'(against {evaluation["error_against"]})')
  if not config.output.render or truth is None:
    return
  num_frames = truth['frames'].shape[0]
  chosen = np.unique(np.linspace(0, num_frames - 1, config.output.render_frames).astype(int))
  shown = {m: {'frames': chunks.frames_at(chosen)} for m, chunks in results.items()}
  true_frames = np.stack([truth['frames'][j] for j in chosen])
  reporting.render_error_maps(os.path.join(workdir, 'renders', 'error_maps.png'), true_frames,
                              shown, actor.faces, actor.region, range(len(chosen)),
                              numbers=chosen)


def write_usd(path: str, model: FitModel, result: Dict, truth: Optional[Dict],
              fps: float = usd_export.DEFAULT_FPS) -> str:
  """One method's fitted performance as USD (`usd_export.write_performance`), with the error
  primvars when there is ground truth (its frames as an array, or anything `np.asarray` makes
  one of)."""
  keys = ('frames', 'jaw_rotation', 'jaw_translation', 'head_rotation', 'head_translation')
  return usd_export.write_performance(
      path, model.actor, {k: np.asarray(result[k]) for k in keys if k in result},
      np.asarray(model.spec.pivot), None if truth is None else np.asarray(truth['frames']), fps)


def fit_and_report(config: ml_collections.ConfigDict, model: FitModel, targets: Dict,
                   truth: Optional[Dict], workdir: str,
                   log: Optional[Callable[[str], None]] = print,
                   usd_fps: Optional[float] = None) -> Dict:
  """Fits every method of `config.methods` in `workdir` (resuming), writes every output (with
  `usd_fps`, <method>/performance.usdc at that frame rate too) and returns the report.

  Holds a chunk of `train.chunk_frames` frames at a time (the module docstring says how);
  `truth['frames']` may be an array or anything that slices into arrays (e.g.
  `synthetic_performance.PerformanceFrames`).
  """
  check_usd(usd_fps)
  methods = methods_lib.parse_methods(config)
  os.makedirs(workdir, exist_ok=True)
  num_frames = next(iter(targets.values())).num_frames
  results, seconds, held_out = {}, {}, {}
  for method in methods:
    if log:
      log(f'fitting {method} to {num_frames} frames '
          f'({", ".join(f"{k}: {t.points.count} points" for k, t in targets.items())})')
    start = time.perf_counter()
    results[method], held_out[method] = methods_lib.fit_with_held_out(method, config, model,
                                                                      targets, workdir, log)
    seconds[method] = time.perf_counter() - start
    bad = results[method].non_finite()
    if bad:
      raise train_loop.Diverged(f'{method}: non-finite {", ".join(sorted(bad))} in the fit; '
                                f'nothing of it was written to {os.path.join(workdir, method)}')
    if not distributed.is_primary():  # Every process holds the fit; process 0 writes it.
      continue
    out = os.path.join(workdir, method)
    files.write_npz_chunks(os.path.join(out, 'fit.npz'), results[method].files())
    if config.output.meshes:
      for index, (first, _) in enumerate(results[method].ranges):
        reporting.write_mesh_sequence(os.path.join(out, 'meshes'),
                                      results[method].read(index, ['frames'])['frames'],
                                      model.actor.faces, config.output.mesh_format, first)
    if usd_fps is not None:
      write_usd(os.path.join(out, USD_FILE), model, results[method].load(), truth, usd_fps)
  with tempfile.TemporaryDirectory(prefix='aim_jax_errors_') as scratch:
    evaluation = methods_lib.evaluate_chunks(results, truth, targets, model.actor,
                                             int(config.train.chunk_frames), scratch)
  report = {
      'actor': model.actor.name,
      'num_frames': num_frames,
      'targets': {k: {'points': t.points.count} for k, t in targets.items()},
      'error_against': evaluation['error_against'],
      'error_mm': evaluation['error_mm'],
      'jaw': evaluation['jaw'],
      'held_out': {m: h for m, h in held_out.items() if h is not None},
      'seconds_this_run': seconds,
      'seconds_per_frame_this_run': {m: s / num_frames for m, s in seconds.items()},
      'config': config.to_dict(),
  }
  if distributed.is_primary():
    write_report_outputs(workdir, config, model.actor, results, evaluation, truth, report)
  distributed.barrier(f'{workdir} written')
  if log:
    log(format_report(report))
  return report


def format_report(report: Dict) -> str:
  """A few human-readable lines of a fitting report."""
  lines = [f'{report["actor"]}: {report["num_frames"]} frames, error against '
           f'{report["error_against"]}']
  notes = {m: f'({s:.2f} s/frame)' for m, s in report['seconds_per_frame_this_run'].items()}
  lines += reporting.error_table(report['error_mm'], report['jaw'], 10, notes)
  for method, cv in report.get('held_out', {}).items():
    for kind, h in cv['held_out'].items():
      unit = 'px' if kind == 'landmarks' else 'mm'
      lines.append(f'  {method:<10} held-out {kind} ({cv["folds"]} folds, regularisation '
                   f'x{cv["chosen_scale"]:g}): rms {h["rms"]:.3f} {unit}, without the stated '
                   f'noise {h["denoised_rms"]:.3f} {unit}')
  return '\n'.join(lines)
