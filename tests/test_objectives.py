"""The data and regularisation terms of fitting."""

import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import objectives
from aim_jax.fitting import targets as targets_lib


def test_robust_penalties():
  r2 = jnp.array([0.25, 4.0, 100.0])
  np.testing.assert_allclose(objectives.robust_penalty(r2, 'none', 1.0), r2)
  huber = np.asarray(objectives.robust_penalty(r2, 'huber', 1.0))
  np.testing.assert_allclose(huber, [0.25, 3.0, 19.0], rtol=1e-5)
  cauchy = np.asarray(objectives.robust_penalty(r2, 'cauchy', 1.0))
  assert cauchy[0] == pytest.approx(np.log1p(0.25)) and cauchy[2] < 5.0


def test_landmark_term_is_in_mm_at_the_points_depth():
  cam = camera_lib.look_at(eye=(0.0, 0.0, 500.0), target=(0.0, 0.0, 0.0), focal_px=1000.0)
  points = targets_lib.at_vertices([0])
  truth = jnp.zeros((1, 1, 3))
  pixels = camera_lib.project(cam, truth)
  targets = targets_lib.make_target_set('landmarks', points, np.asarray(pixels), camera=cam)
  moved = truth + jnp.array([1.0, 0.0, 0.0])  # 1 mm sideways at 500 mm: 2 px.
  value = objectives.data_term(moved, targets, targets.visible, targets.values)
  assert float(value) == pytest.approx(1.0, rel=1e-3)
