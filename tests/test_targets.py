"""Fitting targets (aim_jax/fitting/targets.py): surface points, interpolation and validated
target sets on tiny known cases."""

import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import targets as targets_lib

TRIANGLES = np.array([[0, 1, 2], [1, 3, 2]])


def test_at_vertices_one_vertex_of_weight_one_each():
  points = targets_lib.at_vertices([4, 0, 7])
  assert points.count == 3
  np.testing.assert_array_equal(points.vertices, [[4], [0], [7]])
  assert points.vertices.dtype == jnp.int32
  np.testing.assert_array_equal(points.weights, np.ones((3, 1)))


def test_at_barycentric_takes_the_triangles_corners_and_normalises_the_weights():
  points = targets_lib.at_barycentric(TRIANGLES, [1, 0], [[1.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
  assert points.count == 2
  np.testing.assert_array_equal(points.vertices, [[1, 3, 2], [0, 1, 2]])
  np.testing.assert_allclose(points.weights, [[0.25, 0.25, 0.5], [0.0, 0.0, 1.0]])


def test_interpolate_known_answer_over_frames():
  corners = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 8.0, 0.0], [4.0, 8.0, 2.0]])
  frames = np.stack([corners, corners + np.array([10.0, 0.0, 0.0])])  # (2, 4, 3)
  points = targets_lib.at_barycentric(TRIANGLES, [0, 1], [[1.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
  values = targets_lib.interpolate(points, jnp.asarray(frames)[:, points.vertices])
  assert values.shape == (2, 2, 3)
  # 0.25 (0,0,0) + 0.25 (4,0,0) + 0.5 (0,8,0); the second point is vertex 1 itself.
  np.testing.assert_allclose(values[0], [[1.0, 4.0, 0.0], [4.0, 0.0, 0.0]], atol=1e-6)
  np.testing.assert_allclose(values[1], [[11.0, 4.0, 0.0], [14.0, 0.0, 0.0]], atol=1e-6)


def test_make_target_set_visibility_and_frames():
  values = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
  values[1, 2] = np.nan  # Missing: invisible by default, stored as 0.
  targets = targets_lib.make_target_set('markers', targets_lib.at_vertices([0, 1, 2]), values)
  np.testing.assert_array_equal(targets.visible, [[1, 1, 1], [1, 1, 0]])
  np.testing.assert_array_equal(targets.values[1, 2], [0.0, 0.0, 0.0])
  np.testing.assert_array_equal(targets.values[0], values[0])
  assert targets.num_frames == 2
  second = targets.frames(np.array([1]))
  assert second.num_frames == 1 and second.kind == 'markers'
  np.testing.assert_array_equal(second.visible, [[1, 1, 0]])


@pytest.mark.parametrize('kind, values, visible, message', [
    ('sparse', np.zeros((1, 2, 3)), None, "unknown target kind 'sparse'"),
    ('dense', np.zeros((1, 2, 2)), None, r'dense values must have shape \(frames, 2, 3\)'),
    ('dense', np.zeros((2, 3)), None, r'got \(2, 3\)'),
    ('markers', np.zeros((1, 3, 3)), None, 'shape'),
    ('landmarks', np.zeros((1, 2, 3)), None, r'\(frames, 2, 2\)'),
    ('dense', np.zeros((2, 2, 3)), np.ones((2, 3)), 'visibility must have shape'),
    ('dense', np.full((2, 2, 3), np.nan), np.ones((2, 2)), 'NaN or infinite dense values in '
     'frame 0'),
    ('landmarks', np.zeros((1, 2, 2)), None, 'landmarks need a camera'),
])
def test_make_target_set_refuses_bad_input_naming_the_source(kind, values, visible, message):
  with pytest.raises(ValueError, match=message) as err:
    targets_lib.make_target_set(kind, targets_lib.at_vertices([3, 5]), values, visible,
                                source='my.npz')
  assert str(err.value).startswith('my.npz: ') and '\n' not in str(err.value)


def test_landmarks_with_a_camera_are_accepted():
  camera = camera_lib.look_at((0.0, 0.0, 500.0), (0.0, 0.0, 0.0))
  targets = targets_lib.make_target_set('landmarks', targets_lib.at_vertices([3, 5]),
                                        np.ones((1, 2, 2)), camera=camera)
  assert targets.values.shape == (1, 2, 2) and targets.camera is camera


def test_dense_targets_all_vertices_or_a_region():
  frames = np.random.default_rng(0).normal(size=(3, 5, 3))
  every = targets_lib.dense_targets(frames)
  assert every.kind == 'dense'
  np.testing.assert_array_equal(every.points.vertices[:, 0], np.arange(5))
  np.testing.assert_allclose(every.values, frames, rtol=1e-6)
  np.testing.assert_array_equal(every.visible, np.ones((3, 5)))
  region = np.array([False, True, False, True, True])
  some = targets_lib.dense_targets(frames, region)
  np.testing.assert_array_equal(some.points.vertices[:, 0], [1, 3, 4])
  np.testing.assert_allclose(some.values, frames[:, [1, 3, 4]], rtol=1e-6)
  # A vertex missing in a frame (NaN) is invisible there.
  frames[1, 3] = np.nan
  gap = targets_lib.dense_targets(frames, region)
  np.testing.assert_array_equal(gap.visible, [[1, 1, 1], [1, 0, 1], [1, 1, 1]])
  with pytest.raises(ValueError, match=r'^seq: dense values must have shape \(frames, 5, 3\)'):
    targets_lib.dense_targets(np.zeros((2, 5)), source='seq')
