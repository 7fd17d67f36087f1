"""What runs report alike (aim_jax/runs/reporting.py): per-frame CSV and plot, error lines."""

import numpy as np
import pytest

from aim_jax import eval as eval_lib
from aim_jax.runs import reporting


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
