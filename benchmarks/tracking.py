r"""Live tracking against the batch fit, on the same frames, as a user runs both.

For each case, the batch fit (`fit_sequence.py`'s `run_fit`, AIM) and the tracker
(`track.py`'s `run_track`, `configs/track.py`) run on the same targets, and the tracker's report
(latency per frame; error of the tracked frames against the ground truth, beside the batch
fit's on the same frames) is collected. Cases are `<kind>:<seed>` of the demo model's synthetic
held-out sequence (`synthetic.kind`, `synthetic.seed`; seed 1 is the sequence the tracker's
settings were chosen on, other seeds are held out), `dense_noise:<seed>` (dense targets with
`--noise_mm` Gaussian noise per axis, measured against the clean frames), `dense_outliers:<seed>`
(that noise plus `--outlier_fraction` of the points in every frame moved `--outlier_mm` in a
random direction, as a scan's stray points; fitted and tracked with a Huber penalty at three
times the noise), and with `--ict_model_dir` / `--ict_targets` an ICT actor's dense
performance.

  python benchmarks/tracking.py --model_dir=workdirs/demo \
      --ict_model_dir=workdirs/ict0_model --ict_targets=workdirs/ict0/performance.npz

Writes benchmarks/results/tracking.json and prints a markdown table.
"""

import json
import os
import platform
import tempfile

import jax
import numpy as np
from absl import app, flags
from steppers import gemm_rate

from aim_jax import model_dir as model_dir_lib
from aim_jax.fitting import methods
from aim_jax.runs import fit as fit_run
from aim_jax.runs import track as track_run
from configs import fit as fit_config
from configs import track as track_config

_MODEL_DIR = flags.DEFINE_string('model_dir', 'workdirs/demo', 'A learn_model.py workdir of the '
                                 'synthetic actor.')
_CASES = flags.DEFINE_list('cases', ['dense:1', 'dense:2', 'markers:1', 'markers:2',
                                     'landmarks:2', 'dense_noise:2'],
                           '<kind>:<synthetic seed> cases.')
_NOISE_MM = flags.DEFINE_float('noise_mm', 0.2, 'Noise (mm per axis) of the dense_noise and '
                                'dense_outliers cases.')
_OUTLIER_FRACTION = flags.DEFINE_float('outlier_fraction', 0.02, 'Fraction of the points moved '
                                       'in every frame of the dense_outliers case.')
_OUTLIER_MM = flags.DEFINE_float('outlier_mm', 5.0, 'How far (mm) the outliers are moved.')
_ICT_MODEL_DIR = flags.DEFINE_string('ict_model_dir', None, 'A model learned on an ICT actor.')
_ICT_TARGETS = flags.DEFINE_string('ict_targets', None, "The ICT actor's performance.npz "
                                   '(targets and ground truth).')
_DELAYS = flags.DEFINE_list('delays', ['0'], 'tracking.delay_frames values tracked per case '
                            '(one calibration each, one batch fit per case).')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/tracking.json', 'Result file.')


def _noisy_sequence(model_dir, seed, noise_mm, folder, outlier_fraction=0.0, outlier_mm=0.0):
  """(noisy targets npz, clean ground truth npz) of the demo's dense sequence of `seed`, with
  `outlier_fraction` of the points of every frame moved `outlier_mm` in random directions."""
  config = fit_config.get_config()
  config.synthetic.seed = seed
  _, truth = methods.synthetic_sequence_targets(config, model_dir_lib.load_fit_model(
      model_dir).actor)
  clean = np.asarray(truth['frames'], np.float32)
  rng = np.random.default_rng(seed)
  noisy = clean + rng.normal(0.0, noise_mm, clean.shape)
  if outlier_fraction:
    moved = rng.random(clean.shape[:2]) < outlier_fraction
    direction = rng.normal(size=clean.shape)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    noisy[moved] += outlier_mm * direction[moved]
  os.makedirs(folder, exist_ok=True)
  paths = os.path.join(folder, 'noisy.npz'), os.path.join(folder, 'clean.npz')
  np.savez(paths[0], frames=noisy.astype(np.float32))
  np.savez(paths[1], frames=clean)
  return paths


def run_case(name, model_dir, targets, ground_truth, kind, seed, folder, loss=None):
  """Batch fit and tracking of one case (`loss`: overrides of config.loss for both), once per
  `--delays` value (`tracking.delay_frames`); the tracker's reports with the batch fit's errors.
  """
  def configured(config):
    config.synthetic.kind = kind
    config.synthetic.seed = seed
    config.loss.update(loss or {})
    return config

  fit = configured(fit_config.get_config())
  fit.methods = 'aim'
  fit_dir = os.path.join(folder, name, 'fit')
  fit_run.run_fit(fit, model_dir, targets, fit_dir, ground_truth=ground_truth, log=None)
  rows = []
  for delay in _DELAYS.value:
    track = configured(track_config.get_config())
    track.tracking.delay_frames = int(delay)
    report = track_run.run_track(track, model_dir, targets,
                                 os.path.join(folder, name, f'track_delay{delay}'),
                                 ground_truth=ground_truth, batch_fit=fit_dir, log=None)
    rows.append({
        'case': name, 'tracked_frames': report['num_frames'] - report['calibration_frames'],
        'calibration_frames': report['calibration_frames'],
        'delay_frames': report['delay_frames'],
        'latency_ms': report['latency_ms'], 'compile_s': report['compile_seconds'],
        'tracked_error_mm': report['error_mm']['tracked'],
        'batch_error_mm': report['batch_fit_error_mm']['tracked'],
        'ratio': report['tracked_over_batch'], 'tracking': report['config']['tracking'],
        'robust': [report['config']['loss']['robust'], report['config']['loss']['robust_scale']]})
    print(json.dumps(rows[-1]), flush=True)
  return rows


def main(argv):
  del argv
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for case in _CASES.value:
      kind, seed = case.split(':')
      targets, truth, loss, name = 'synthetic', None, None, f'demo {case}'
      if kind in ('dense_noise', 'dense_outliers'):
        outliers = kind == 'dense_outliers'
        fraction = _OUTLIER_FRACTION.value if outliers else 0.0
        targets, truth = _noisy_sequence(_MODEL_DIR.value, int(seed), _NOISE_MM.value,
                                         os.path.join(folder, case), fraction, _OUTLIER_MM.value)
        kind, name = 'dense', f'{name} ({_NOISE_MM.value:g} mm)'
        if outliers:
          loss = {'robust': 'huber', 'robust_scale': 3.0 * _NOISE_MM.value}
          name = f'{name[:-1]}, {fraction:.0%} moved {_OUTLIER_MM.value:g} mm, Huber)'
      rows.extend(run_case(name, _MODEL_DIR.value, targets, truth, kind, int(seed), folder,
                           loss))
    if _ICT_MODEL_DIR.value:
      rows.extend(run_case(f'ICT {os.path.basename(os.path.dirname(_ICT_TARGETS.value))} dense',
                           _ICT_MODEL_DIR.value, _ICT_TARGETS.value, _ICT_TARGETS.value,
                           'dense', 1, folder))
  result = {'machine': {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
                        'jax': jax.__version__, 'device': str(jax.devices()[0]),
                        'gemm_gflops': gemm_rate() / 1e9},
            'noise_mm': _NOISE_MM.value, 'rows': rows}
  os.makedirs(os.path.dirname(_OUT.value), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(result, f, indent=1)
  print('| case | delay | latency median / p95 | tracked error | batch fit, same frames | ratio |')
  print('|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['case']} | {r['delay_frames']} | {r['latency_ms']['median']:.1f} / "
          f"{r['latency_ms']['p95']:.1f} ms | {r['tracked_error_mm']:.4f} mm | "
          f"{r['batch_error_mm']:.4f} mm | {r['ratio']:.2f} |")


if __name__ == '__main__':
  app.run(main)
