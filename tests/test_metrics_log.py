"""metrics.jsonl: strict JSON, truncation on resume, torn lines, curves."""

import json
import math

import numpy as np

from aim_jax import metrics_log


def test_non_finite_values_are_written_as_null(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  metrics_log.append(path, {'step': 1, 'total': float('nan'), 'fit': float('inf'), 'rate': 2.0})
  line = open(path).read().strip()
  assert json.loads(line) == {'step': 1, 'total': None, 'fit': None, 'rate': 2.0}
  json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # Strict.


def test_truncate_keeps_steps_up_to_the_checkpoint(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  for step in (10, 20, 30):
    metrics_log.append(path, {'step': step, 'total': step / 10})
  metrics_log.truncate(path, 20)
  assert [r['step'] for r in metrics_log.read(path)] == [10, 20]
  metrics_log.truncate(path, 0)
  assert metrics_log.read(path) == []


def test_a_torn_last_line_is_skipped(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  path.write_text('{"step": 1, "total": 2.0}\n{"step": 2, "to')
  assert metrics_log.read(str(path)) == [{'step': 1, 'total': 2.0}]


def test_curves_and_median_rate(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  metrics_log.append(path, {'step': 1, 'total': 4.0, 'rate': 1.0})  # Compile time: left out.
  metrics_log.append(path, {'step': 2, 'total': 3.0, 'extra': 5.0, 'rate': 10.0})
  metrics_log.append(path, {'step': 3, 'total': 2.0, 'rate': 20.0})
  steps, curves = metrics_log.curves(path)
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_array_equal(curves['total'], [4.0, 3.0, 2.0])
  assert math.isnan(curves['extra'][0]) and curves['extra'][1] == 5.0
  assert 'rate' not in curves
  assert metrics_log.median_rate(path) == 15.0
  assert metrics_log.median_rate(str(tmp_path / 'none.jsonl')) is None
