"""Collects benchmarks/gpu.sh's runs into one result file, with the device named."""

import json
import os
import platform
import time

import jax
from absl import app, flags

_WORK = flags.DEFINE_string('work', 'workdirs/gpu_bench', 'gpu.sh work folder.')
_LEARN_SECONDS = flags.DEFINE_float('learn_seconds', None, 'Wall time of the learning run.')
_LEARN_STEPS = flags.DEFINE_integer('learn_steps', None, 'Its steps.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/gpu.json', 'Result file.')


def main(argv):
  del argv
  with open(os.path.join(_WORK.value, 'fit', 'report.json')) as f:
    fit = json.load(f)
  with open(os.path.join(_WORK.value, 'track', 'report.json')) as f:
    track = json.load(f)
  with open(os.path.join(_WORK.value, 'fit_fast', 'report.json')) as f:
    fast = json.load(f)
  device = jax.devices()[0]
  result = {
      'device': f'{device.platform}: {device.device_kind} x {jax.device_count()}',
      'host': f'{platform.machine()}, {os.cpu_count()} cores', 'jax': jax.__version__,
      'date': time.strftime('%Y-%m-%d'),
      'learning': {'config': 'configs/learn.py', 'steps': _LEARN_STEPS.value,
                   'wall_seconds': _LEARN_SECONDS.value},
      'fitting': {'frames': fit['num_frames'], 'steps': fit['config']['train']['num_steps'],
                  'seconds_per_frame': fit['seconds_per_frame_this_run']['aim'],
                  'error_mm': fit['error_mm']['aim']['mean']},
      'fitting_fast': {'config': 'configs/fit_fast.py', 'frames': fast['num_frames'],
                       'steps': fast['config']['train']['num_steps'],
                       'seconds_per_frame': fast['seconds_per_frame_this_run']['aim'],
                       'error_mm': fast['error_mm']['aim']['mean']},
      'tracking': {k: track[k] for k in ('latency_ms', 'error_mm', 'batch_fit_error_mm',
                                         'calibration_frames', 'compile_seconds') if k in track},
  }
  os.makedirs(os.path.dirname(_OUT.value) or '.', exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result, indent=1))


if __name__ == '__main__':
  app.run(main)
