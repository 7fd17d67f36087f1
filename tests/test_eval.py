"""Evaluation figures on known answers."""

import numpy as np
import pytest

from aim_jax import eval as eval_lib
from aim_jax.data.actor import GroundTruth


def test_stats_known_answer_and_empty():
  s = eval_lib.stats(np.arange(1, 101, dtype=float))
  assert s['mean'] == 50.5 and s['median'] == 50.5 and s['count'] == 100
  assert s['p95'] == pytest.approx(95.05)
  assert np.isnan(eval_lib.stats([])['mean']) and eval_lib.stats([])['count'] == 0


def test_error_summary_counts_only_the_region():
  target = np.zeros((2, 4, 3))
  predicted = target.copy()
  predicted[:, 0, 0] = 3.0  # Vertex 0 is 3 mm off, outside the region.
  predicted[:, 1, 1] = 1.0
  region = np.array([False, True, True, True])
  assert eval_lib.error_summary(predicted, target, region)['mean'] == pytest.approx(1 / 3)
  assert eval_lib.error_summary(predicted, target)['mean'] == pytest.approx(1.0)


def test_normal_angle():
  a = np.array([[1.0, 0, 0], [0, 2.0, 0]])
  b = np.array([[0, 0, 5.0], [0, 1.0, 0]])
  np.testing.assert_allclose(eval_lib.normal_angle_deg(a, b), [90.0, 0.0], atol=1e-6)


def test_anatomy_errors_split_by_constraint():
  v = 4
  gt = GroundTruth(bone_point=np.zeros((v, 3)), bone_normal=np.tile([0, 0, 1.0], (v, 1)),
                   thickness=np.full(v, 10.0), skinning=np.zeros(v),
                   jaw_rotation=np.eye(3)[None], jaw_translation=np.zeros((1, 3)),
                   bone_id=np.zeros(v, int))
  fields = {'bone': np.zeros((v, 3)), 'normal': np.tile([0, 0, 1.0], (v, 1)),
            'thickness': np.array([10.0, 10.0, 12.0, 14.0]), 'skinning': np.zeros(v)}
  constrained = np.array([True, True, False, False])
  errors = eval_lib.anatomy_errors(fields, gt, constrained)
  assert errors['thickness_mm']['constrained']['mean'] == 0.0
  assert errors['thickness_mm']['unconstrained']['mean'] == 3.0
  assert errors['bone_mm']['all']['mean'] == 0.0


def test_jaw_errors_zero_for_identical_and_angle_for_rotation():
  pivot = np.array([0.0, -30.0, 0.0])
  angle = np.radians(10.0)
  rotation = np.array([[[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                        [0, np.sin(angle), np.cos(angle)]]])
  same = eval_lib.jaw_errors(rotation, np.zeros((1, 3)), rotation, np.zeros((1, 3)), pivot)
  assert same['rotation_deg']['mean'] == pytest.approx(0.0, abs=1e-4)
  assert same['displacement_mm']['mean'] == pytest.approx(0.0, abs=1e-9)
  off = eval_lib.jaw_errors(rotation, np.zeros((1, 3)), np.eye(3)[None], np.zeros((1, 3)), pivot)
  assert off['rotation_deg']['mean'] == pytest.approx(10.0, abs=1e-3)


def _blocks(errors, size):
  return lambda: (errors[s:s + size] for s in range(0, errors.shape[0], size))


@pytest.mark.parametrize('values', ['spread', 'ties', 'signed'])
def test_sequence_stats_are_numpys_in_any_blocks_of_frames(values):
  rng = np.random.default_rng(5)
  for frames, vertices in [(1, 1), (2, 3), (7, 11), (23, 40), (40, 17)]:
    errors = {'spread': rng.gamma(2.0, 0.3, (frames, vertices)),
              'ties': rng.integers(0, 4, (frames, vertices)) * 0.25,
              'signed': rng.standard_normal((frames, vertices))}[values]
    found = [eval_lib.sequence_stats(_blocks(errors, size)) for size in (1, 3, frames)]
    for s, per_frame in found:
      assert s['median'] == np.median(errors) and s['p95'] == np.percentile(errors, 95)
      assert s['mean'] == pytest.approx(errors.mean(), rel=1e-14, abs=1e-15)
      assert s['count'] == errors.size
      np.testing.assert_array_equal(per_frame, errors.mean(axis=1))
    assert all(f[0] == found[0][0] for f in found)  # The blocks change nothing, bit for bit.


def test_sequence_stats_of_wide_masked_blocks_are_the_same_bit_for_bit():
  # As `methods.evaluate_chunks` passes them: a few thousand region vertices picked by a mask.
  # numpy's sum over axis 1 of such blocks once changed in the last bit with the block's rows.
  rng = np.random.default_rng(0)
  errors = rng.gamma(2.0, 0.3, (7, 4600))
  region = rng.random(4600) > 0.04
  found = [eval_lib.sequence_stats(
      lambda size=size: (errors[s:s + size][:, region] for s in range(0, 7, size)))
      for size in (1, 3, 7)]
  assert all(f[0] == found[0][0] for f in found)
  for _, per_frame in found:
    np.testing.assert_array_equal(per_frame, found[0][1])


def test_sequence_stats_of_nothing_or_nan():
  s, per_frame = eval_lib.sequence_stats(lambda: iter([]))
  assert s['count'] == 0 and np.isnan(s['mean']) and per_frame.shape == (0,)
  errors = np.ones((3, 2))
  errors[1, 0] = np.nan
  s, per_frame = eval_lib.sequence_stats(_blocks(errors, 2))
  assert np.isnan(s['mean']) and np.isnan(s['median']) and np.isnan(s['p95'])
  assert s['count'] == 6 and per_frame[0] == 1.0 and np.isnan(per_frame[1])


def test_order_statistics_known_answer():
  values = np.array([[3.0, -1.0, 2.5], [0.0, -0.5, 7.0]])
  found = eval_lib.order_statistics(lambda: iter(values), [0, 2, 5, 2])
  assert found == {0: -1.0, 2: 0.0, 5: 7.0}


def test_sequence_stats_hold_a_block_at_a_time():
  import tracemalloc
  block = (50, 2000)  # 800 kB per block, 40 blocks made on demand (32 MB in all).

  def blocks():
    for seed in range(40):
      yield np.random.default_rng(seed).gamma(2.0, 0.3, block)
  tracemalloc.start()
  try:
    s, per_frame = eval_lib.sequence_stats(blocks)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert s['count'] == 40 * 50 * 2000 and per_frame.shape == (2000,)
  # A few blocks' worth (the block, its keys and digits) and the digit counts (65,536 int64 per
  # rank), not the 40 blocks.
  assert peak < 5 * 50 * 2000 * 8 + 4e6, peak
