"""Evaluation time of learned models (Fig. 18's time axis): median wall time of one jitted
evaluation of every shape at the template points."""

from __future__ import annotations

import time
from typing import Dict

import jax
import numpy as np

from aim_jax import model_dir
from aim_jax.models import aim


def evaluation_times(models: Dict[str, tuple], points: np.ndarray, rounds: int
                     ) -> Dict[str, float]:
  """Median wall time (ms) of one jitted evaluation of every shape at `points` (N, 3) mm, for
  each of `models` (label -> (params, spec)); after one warm-up call each, the models are timed
  in turn, round by round, so that load on the machine affects them alike."""
  points = jax.device_put(np.asarray(points, np.float32))
  runs = {}
  for label, (params, spec) in models.items():
    run = jax.jit(lambda p, x, spec=spec: aim.reconstruct(p, x, spec))
    run(params, points).block_until_ready()
    runs[label] = (run, params)
  times = {label: [] for label in runs}
  for _ in range(max(1, rounds)):
    for label, (run, params) in runs.items():
      start = time.perf_counter()
      run(params, points).block_until_ready()
      times[label].append(time.perf_counter() - start)
  return {label: 1e3 * float(np.median(t)) for label, t in times.items()}


def evaluation_ms(params, spec: aim.AIMSpec, points: np.ndarray, repeats: int) -> float:
  """Median wall time (ms) of one jitted evaluation of every shape at `points` (N, 3) mm."""
  return evaluation_times({'model': (params, spec)}, points, repeats)['model']


def side_by_side_eval_ms(model_dirs: Dict[str, str], points: np.ndarray, rounds: int = 7
                         ) -> Dict[str, float]:
  """Evaluation times (ms) of several learned models (label -> model directory) measured side
  by side in this process (see `evaluation_times`)."""
  loaded = {label: model_dir.load_model(folder) for label, folder in model_dirs.items()}
  return evaluation_times({label: (m.params, m.spec) for label, m in loaded.items()}, points,
                          rounds)
