"""Track-and-report: what `experiments/track.py` runs, as one library call.

learned model + targets -> the first `tracking.calibration_frames` frames fitted in batch, every
later frame solved alone warm-started from the previous one (`fitting/tracking.py`) ->
track.npz (frames (F, V, 3) mm, jaws, latency_ms (F,)), report.json (latency, and with ground
truth the error of the calibration and tracked frames; with `batch_fit` the batch fit's error
on the same frames beside it), calibration/ (the calibration fit's checkpoints: a killed run
resumes the calibration; the tracked frames, seconds, are solved again).
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import files, train_loop
from aim_jax import model_dir as model_dir_lib
from aim_jax import workdir as workdir_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import methods as methods_lib
from aim_jax.fitting import plausibility, tracking
from aim_jax.runs import fit as fit_run
from aim_jax.runs import identity as identity_lib

TRACK_NPZ = 'track.npz'
CALIBRATION = 'calibration'  # The calibration fit's checkpoints (a killed run resumes it).


def _errors(frames: np.ndarray, truth: np.ndarray, region: np.ndarray) -> np.ndarray:
  """(F,) mean per-vertex error (mm) over the face region."""
  return eval_lib.vertex_errors(frames, truth)[:, region].mean(axis=1)


def track_report(result: Dict, truth: Optional[Dict], region: np.ndarray, pivot: np.ndarray,
                 batch_frames: Optional[np.ndarray] = None) -> Dict:
  """Latency and error figures of a tracked sequence (`tracking.track_sequence`'s result)."""
  count = int(result['calibration_frames'])
  latency = np.asarray(result['latency_ms'])[count:]
  report = {
      'num_frames': int(result['frames'].shape[0]), 'calibration_frames': count,
      'calibration_seconds': float(result['calibration_seconds']),
      'compile_seconds': float(result['compile_seconds']),
      'delay_frames': int(result['delay_frames']),
      'latency_ms': {'mean': float(latency.mean()), 'median': float(np.median(latency)),
                     'p95': float(np.percentile(latency, 95)), 'max': float(latency.max())},
  }
  if truth is not None:
    error = _errors(result['frames'], truth['frames'], region)
    report['error_mm'] = {'calibration': float(error[:count].mean()),
                          'tracked': float(error[count:].mean())}
    if 'jaw_rotation' in truth:
      jaw = eval_lib.jaw_errors(result['jaw_rotation'][count:], result['jaw_translation'][count:],
                                truth['jaw_rotation'][count:], truth['jaw_translation'][count:],
                                pivot)
      report['jaw_tracked'] = jaw
    if batch_frames is not None:
      batch = _errors(batch_frames, truth['frames'], region)
      report['batch_fit_error_mm'] = {'calibration': float(batch[:count].mean()),
                                      'tracked': float(batch[count:].mean())}
      report['tracked_over_batch'] = float(error[count:].mean() / batch[count:].mean())
  return report


def format_report(report: Dict) -> str:
  lat = report['latency_ms']
  lines = [f'tracked {report["num_frames"] - report["calibration_frames"]} frames after '
           f'{report["calibration_frames"]} calibration frames ({report["calibration_seconds"]:.1f}'
           f' s; compile {report["compile_seconds"]:.1f} s): latency median {lat["median"]:.1f} '
           f'ms, p95 {lat["p95"]:.1f} ms'
           + (f', shown {report["delay_frames"]} frame behind' if report['delay_frames'] else '')]
  if 'error_mm' in report:
    e = report['error_mm']
    line = f'error: calibration {e["calibration"]:.4f} mm, tracked {e["tracked"]:.4f} mm'
    if 'batch_fit_error_mm' in report:
      batch = report['batch_fit_error_mm']['tracked']
      line += (f'; the batch fit on the tracked frames {batch:.4f} mm (tracked / batch '
               f'{report["tracked_over_batch"]:.2f})')
    lines.append(line)
  return '\n'.join(lines)


def _batch_frames(path: Optional[str], num_frames: int, num_vertices: int) -> Optional[np.ndarray]:
  """The frames of a batch fit (`fit_sequence.py`'s <method>/fit.npz) to compare with."""
  if not path:
    return None
  if os.path.isdir(path):
    path = os.path.join(path, 'aim', 'fit.npz')
  try:
    with np.load(path) as data:
      frames = data['frames']
  except (OSError, ValueError, KeyError) as err:
    raise ValueError(f'{path}: not a readable fit with frames ({type(err).__name__}: {err})'
                     ) from None
  if frames.shape != (num_frames, num_vertices, 3):
    raise ValueError(f'{path}: frames have shape {frames.shape}, expected '
                     f'({num_frames}, {num_vertices}, 3) like the targets')
  return frames


def run_track(config: ml_collections.ConfigDict, model_dir: str, targets: str, workdir: str,
              ground_truth: Optional[str] = None, units: str = 'mm',
              batch_fit: Optional[str] = None,
              log: Optional[Callable[[str], None]] = print, restart: bool = False) -> Dict:
  """Loads the model and targets, tracks (`tracking.track_sequence`, AIM's settings for the
  target kinds as in batch fitting) and writes track.npz and report.json in the locked workdir.
  """
  fit_run.check_config(config)
  tracking.check_settings(config)
  model = model_dir_lib.load_fit_model(model_dir)
  sequence, truth = fit_run.read_sequence(config, model.actor, targets, ground_truth, units)
  plausibility.check_targets(sequence, model.actor.neutral,
                             'synthetic targets' if targets == 'synthetic' else targets)
  num_frames = next(iter(sequence.values())).num_frames
  batch = _batch_frames(batch_fit, num_frames, model.actor.num_vertices)
  identity = identity_lib.fitting_identity(config, model_dir, sequence, truth)
  identity['kind'] = 'track'
  with workdir_lib.open_run(workdir, identity, restart=restart, log=log):
    aim_config = methods_lib.config_for_targets(config, sequence)
    spec = fit_lib.fit_spec(aim_config, model.basis.num_coefficients)
    result = tracking.track_sequence(aim_config, spec, model.basis, sequence, log=log,
                                     topology=model.topology,
                                     workdir=os.path.join(workdir, CALIBRATION),
                                     jaw=model.jaw)
    if not np.all(np.isfinite(result['frames'])):
      raise train_loop.Diverged(f'{workdir}: non-finite tracked frames; nothing of them was '
                                'written')
    files.write_npz(os.path.join(workdir, TRACK_NPZ), **result)
    report = dict(track_report(result, truth, model.actor.region, model.actor.pivot, batch),
                  actor=model.actor.name, config=config.to_dict())
    files.write_json(os.path.join(workdir, 'report.json'), report)
  if log:
    log(format_report(report))
  return report
