"""Atomic writes (aim_jax/files.py) and what runs report alike (aim_jax/runs/reporting.py)."""

import json
import os

import numpy as np
import pytest

from aim_jax import eval as eval_lib
from aim_jax import files
from aim_jax.runs import reporting


def test_json_with_nan_writes_null_and_is_strict(tmp_path):
  path = str(tmp_path / 'sub' / 'report.json')
  data = {'mean': float('nan'), 'max': np.float32(np.inf), 'count': np.int64(3),
          'per_frame': np.array([1.5, np.nan]), 'nested': [{'x': -np.inf}], 'name': 'a'}
  assert files.write_json(path, data) == path
  text = open(path).read()
  back = json.loads(text, parse_constant=lambda c: pytest.fail(f'non-strict JSON: {c}'))
  assert back == {'mean': None, 'max': None, 'count': 3, 'per_frame': [1.5, None],
                  'nested': [{'x': None}], 'name': 'a'}
  assert os.listdir(tmp_path / 'sub') == ['report.json']  # No temporary file left.
  assert files.read_json(path) == back


def test_npz_and_text_writes(tmp_path):
  path = str(tmp_path / 'fit.npz')
  files.write_npz(path, frames=np.arange(6.0).reshape(2, 3), units=np.array('mm'))
  with np.load(path) as data:
    np.testing.assert_array_equal(data['frames'], np.arange(6.0).reshape(2, 3))
    assert str(data['units']) == 'mm'
  assert os.listdir(tmp_path) == ['fit.npz']
  files.write_text(str(tmp_path / 'a.md'), 'hello\n')
  assert open(tmp_path / 'a.md').read() == 'hello\n'


def test_per_frame_csv_contents(tmp_path):
  per_frame = {'aim': np.array([0.123456, 1.0]), 'gbs': np.array([2.0, 3.5])}
  assert reporting.per_frame_csv(per_frame) == ('frame,aim_mm,gbs_mm\r\n'
                                                '0,0.12346,2.00000\r\n'
                                                '1,1.00000,3.50000\r\n')
  reporting.write_per_frame(str(tmp_path), per_frame, title='t')
  with open(tmp_path / 'per_frame.csv', newline='') as f:
    assert f.read() == reporting.per_frame_csv(per_frame)
  assert (tmp_path / 'per_frame_error.png').exists()


def test_error_stats_known_answer():
  s = eval_lib.stats(np.array([1.0, 2.0, 3.0, 4.0]))
  assert s == {'mean': 2.5, 'median': 2.5, 'p95': pytest.approx(3.85), 'count': 4}
  # Two frames of three vertices; the method is off by 1 mm (frame 0) and 3 mm (frame 1) along
  # x on the two counted vertices.
  reference = np.zeros((2, 3, 3))
  frames = reference.copy()
  frames[0, :, 0] = 1.0
  frames[1, :, 0] = 3.0
  frames[:, 2] = 100.0  # Outside the region: not counted.
  region = np.array([True, True, False])
  report = eval_lib.sequence_errors({'m': {'frames': frames}}, reference, region)
  assert report['error_mm']['m'] == {'mean': 2.0, 'median': 2.0, 'p95': pytest.approx(3.0),
                                     'count': 4}
  np.testing.assert_allclose(report['per_frame_mm']['m'], [1.0, 3.0])
  assert report['jaw'] == {}
  line = reporting.error_line('m', report['error_mm']['m'], note='(1.00 s/frame)')
  assert line == ('  m          mean 2.0000 mm  median 2.0000 mm  p95 3.0000 mm  '
                  '(1.00 s/frame)')
