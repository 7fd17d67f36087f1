"""A sequence held chunk by chunk (aim_jax/fitting/chunks.py): reading chunks, frame ranges
across chunk boundaries, the whole sequence, non-finite arrays."""

import numpy as np
import pytest

from aim_jax.fitting import chunks as chunks_lib


def _sequence(tmp_path, sizes=(3, 3, 1)):
  """(Chunks in files, the same arrays whole): frame-major arrays and one row per chunk."""
  rng = np.random.default_rng(0)
  ranges, paths, parts, start = [], [], [], 0
  for index, n in enumerate(sizes):
    part = {'frames': rng.standard_normal((n, 5, 3)).astype(np.float32),
            'jaw_rotation': rng.standard_normal((n, 3, 3)).astype(np.float32),
            'camera_rot6d': rng.standard_normal((1, 6)).astype(np.float32)}
    path = chunks_lib.result_path(str(tmp_path), index)
    (tmp_path / f'chunk_{index:03d}').mkdir()
    np.savez(path, **part)
    ranges.append((start, start + n))
    paths.append(path)
    parts.append(part)
    start += n
  whole = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  return chunks_lib.Chunks(tuple(ranges), tuple(paths)), whole


def test_chunks_read_one_at_a_time_and_load_the_whole_sequence(tmp_path):
  chunks, whole = _sequence(tmp_path)
  assert chunks.num_frames == 7 and chunks.keys() == ['frames', 'jaw_rotation', 'camera_rot6d']
  assert chunks.files() == [str(tmp_path / f'chunk_{i:03d}' / 'result.npz') for i in range(3)]
  np.testing.assert_array_equal(chunks.read(1, ['frames'])['frames'], whole['frames'][3:6])
  for start, stop in [(0, 7), (2, 5), (3, 6), (5, 7), (6, 7), (0, 1)]:  # Across boundaries.
    np.testing.assert_array_equal(chunks.frames(start, stop), whole['frames'][start:stop])
  np.testing.assert_array_equal(chunks.frames_at([6, 0, 4], 'jaw_rotation'),
                                whole['jaw_rotation'][[6, 0, 4]])
  loaded = chunks.load()
  assert list(loaded) == list(whole)
  for key in whole:
    np.testing.assert_array_equal(loaded[key], whole[key])
  assert loaded['camera_rot6d'].shape == (3, 6)  # One row per chunk, as fit_sequence returns.
  assert chunks.non_finite() == []


def test_non_finite_arrays_are_named_and_in_memory_chunks_have_no_files(tmp_path):
  chunks, whole = _sequence(tmp_path)
  with np.load(chunks.files()[2]) as data:
    last = dict(data)
  last['jaw_rotation'][0, 1, 1] = np.inf
  np.savez(chunks.files()[2], **last)
  assert chunks.non_finite() == ['jaw_rotation']
  held = chunks_lib.in_memory(whole)
  assert held.ranges == ((0, 7),) and held.num_frames == 7
  np.testing.assert_array_equal(held.frames(2, 5), whole['frames'][2:5])
  assert held.keys() == list(whole)
  with pytest.raises(ValueError, match='held in memory'):
    held.files()
