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


def _chunk_files(folder, sizes, seed=0):
  """npz chunk files of consecutive frames as the fitting writes them: frame-major arrays of
  several dtypes and one per-chunk row (like the refined camera)."""
  rng = np.random.default_rng(seed)
  paths = []
  for index, n in enumerate(sizes):
    path = str(folder / f'chunk_{index}.npz')
    np.savez(path, frames=rng.standard_normal((n, 50, 3)).astype(np.float32),
             codes=rng.standard_normal((n, 4)), frame_ids=np.arange(n, dtype=np.int32),
             camera=rng.standard_normal((1, 6)).astype(np.float32))
    paths.append(path)
  return paths


def _members(path):
  import zipfile
  with zipfile.ZipFile(path) as archive:
    return [(i.filename, i.CRC, i.file_size) for i in archive.infolist()]


@pytest.mark.parametrize('compressed', [True, False])
def test_npz_from_chunks_is_what_write_npz_writes_of_the_concatenation(tmp_path, compressed):
  chunks = _chunk_files(tmp_path, [3, 3, 1])
  streamed = files.write_npz_chunks(str(tmp_path / 'out' / 'fit.npz'), chunks, compressed)
  with np.load(chunks[0]) as first:
    names = first.files
  whole = {k: np.concatenate([np.load(c)[k] for c in chunks]) for k in names}
  in_memory = files.write_npz(str(tmp_path / 'fit_in_memory.npz'), compressed, **whole)
  with np.load(streamed) as a, np.load(in_memory) as b:
    assert a.files == b.files == names
    for name in names:
      assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
      np.testing.assert_array_equal(a[name], b[name])
  assert _members(streamed) == _members(in_memory)  # The same .npy bytes, member by member.
  assert os.listdir(tmp_path / 'out') == ['fit.npz']
  assert files.npz_headers(streamed)['frames'] == ((7, 50, 3), np.dtype(np.float32))


def test_npz_from_chunks_holds_one_chunk_of_one_array_at_a_time(tmp_path):
  import tracemalloc
  chunks = _chunk_files(tmp_path, [400] * 12)
  chunk_bytes = 400 * 50 * 3 * 4  # The largest array of a chunk, frames (float32).
  tracemalloc.start()
  try:
    files.write_npz_chunks(str(tmp_path / 'fit.npz'), chunks, compressed=True)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  # 12 chunks are written (in memory: 12 * chunk_bytes for frames alone, twice that with the
  # concatenation); the writer holds one chunk's array and numpy's read buffers of it.
  assert peak < 6 * chunk_bytes, peak
  with np.load(tmp_path / 'fit.npz') as data:
    assert data['frames'].shape == (4800, 50, 3)


def test_npz_from_chunks_that_do_not_match_or_fail_leave_the_old_file(tmp_path, monkeypatch):
  path = tmp_path / 'fit.npz'
  path.write_bytes(b'the old fit')
  chunks = _chunk_files(tmp_path, [2, 2])
  np.savez(chunks[1], frames=np.zeros((2, 49, 3), np.float32), codes=np.zeros((2, 4)),
           frame_ids=np.zeros(2, np.int32), camera=np.zeros((1, 6), np.float32))
  with pytest.raises(ValueError, match='chunk_1.npz: frames is float32 .2, 49, 3.'):
    files.write_npz_chunks(str(path), chunks)
  with pytest.raises(ValueError, match='no chunk files'):
    files.write_npz_chunks(str(path), [])
  chunks = _chunk_files(tmp_path, [2, 2])
  loads, load = [], np.load

  def failing_load(*args, **kwargs):  # A read error half-way through (the third chunk read).
    loads.append(args)
    if len(loads) == 3:
      raise OSError('disk went away')
    return load(*args, **kwargs)
  monkeypatch.setattr(np, 'load', failing_load)
  with pytest.raises(OSError, match='disk went away'):
    files.write_npz_chunks(str(path), chunks)
  assert path.read_bytes() == b'the old fit'
  assert sorted(os.listdir(tmp_path)) == ['chunk_0.npz', 'chunk_1.npz', 'fit.npz']
