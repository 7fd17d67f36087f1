"""Atomic writes (aim_jax/files.py): strict JSON, npz and text, no temporary file left."""

import json
import os

import numpy as np
import pytest

from aim_jax import files


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
