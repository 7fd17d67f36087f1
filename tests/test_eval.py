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
