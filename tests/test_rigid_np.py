"""Tests of aim_jax/rigid_np.py on tiny analytic cases."""

import numpy as np
import pytest

from aim_jax import rigid_np


def _rotation(seed):
  """A random proper rotation (3, 3) from a unit quaternion."""
  q = np.random.default_rng(seed).standard_normal(4)
  w, x, y, z = q / np.linalg.norm(q)
  return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                   [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                   [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def test_similarity_fit_recovers_a_known_transform():
  source = np.random.default_rng(0).standard_normal((6, 3)) * 30.0
  rotation = _rotation(1)
  target = 1.2 * source @ rotation.T + np.array([5.0, -3.0, 40.0])
  s, r, t = rigid_np.similarity_fit(source, target)
  assert s == pytest.approx(1.2, abs=1e-9)
  np.testing.assert_allclose(r, rotation, atol=1e-9)
  np.testing.assert_allclose(rigid_np.apply_similarity(source, s, r, t), target, atol=1e-8)
  r2, _ = rigid_np.rigid_fit(source, source @ rotation.T)
  np.testing.assert_allclose(r2, rotation, atol=1e-9)


@pytest.mark.parametrize('transposed', [False, True])
def test_kabsch_recovers_a_rotated_point_set(transposed):
  source = np.random.default_rng(2).standard_normal((10, 3)) * 20.0
  rotation, translation = _rotation(3), np.array([1.0, 2.0, -3.0])
  r, t = rigid_np.kabsch(source, source @ rotation.T + translation, transposed=transposed)
  np.testing.assert_allclose(r, rotation, atol=1e-12)
  np.testing.assert_allclose(t, translation, atol=1e-10)
  assert np.linalg.det(r) == pytest.approx(1.0)
  # A mirrored target still gives a proper rotation (det +1), never a reflection.
  mirrored = source * [-1.0, 1.0, 1.0]
  assert np.linalg.det(rigid_np.kabsch(source, mirrored, transposed=transposed)[0]) > 0.0


def test_kabsch_agrees_with_the_unweighted_rigid_fit():
  rng = np.random.default_rng(4)
  source = rng.standard_normal((30, 3))
  target = source @ _rotation(5).T + 0.01 * rng.standard_normal((30, 3))
  for transposed in (False, True):
    r, t = rigid_np.kabsch(source, target, transposed=transposed)
    r2, t2 = rigid_np.rigid_fit(source, target)
    np.testing.assert_allclose(r, r2, atol=1e-12)
    np.testing.assert_allclose(t, t2, atol=1e-12)


def test_reflection_twice_is_identity_and_fixes_the_plane():
  normal = np.array([1.0, 2.0, 2.0]) / 3.0
  plane = np.concatenate([normal, [4.0]])
  points = np.random.default_rng(6).standard_normal((7, 3)) * 10.0
  np.testing.assert_allclose(rigid_np.reflect(rigid_np.reflect(points, plane), plane), points,
                             atol=1e-12)
  on_plane = 4.0 * normal + np.cross(normal, [0.0, 0.0, 1.0])
  np.testing.assert_allclose(rigid_np.reflect(on_plane[None], plane), on_plane[None],
                             atol=1e-12)
  np.testing.assert_allclose(rigid_np.reflect_direction(normal[None], plane), -normal[None])
  linear, shift = rigid_np.reflection_transform(plane)
  np.testing.assert_allclose(points @ linear.T + shift, rigid_np.reflect(points, plane),
                             atol=1e-12)
  assert np.linalg.det(linear) == pytest.approx(-1.0)


def test_farthest_points_are_spread():
  # The 8 corners of a cube among 200 points inside it: a sample of 9 takes all 8 corners.
  rng = np.random.default_rng(7)
  corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
  points = np.concatenate([0.2 + 0.6 * rng.random((200, 3)), corners])
  chosen = rigid_np.farthest_points(points, 9, seed=0)
  assert chosen.dtype == np.int64 and len(set(chosen)) == 9
  assert set(range(200, 208)) <= set(chosen[:9].tolist())
  np.testing.assert_array_equal(chosen, rigid_np.farthest_points(points, 9, seed=0))
  assert len(rigid_np.farthest_points(points, 1000)) == len(points)
  assert len(rigid_np.farthest_points(points, 0)) == 0


def test_skinning_with_weight_zero_and_one():
  rng = np.random.default_rng(8)
  points = rng.standard_normal((5, 3)) * 30.0
  rotation, translation, pivot = _rotation(9), np.array([0.0, -2.0, 3.0]), np.array([1.0, 5, 2])
  rigid = (points - pivot) @ rotation.T + pivot + translation
  np.testing.assert_allclose(rigid_np.rigid_about_pivot(points, rotation, translation, pivot),
                             rigid, atol=1e-12)
  np.testing.assert_array_equal(
      rigid_np.skin_points(points, np.zeros(5), rotation, translation, pivot), points)
  np.testing.assert_allclose(
      rigid_np.skin_points(points, np.ones(5), rotation, translation, pivot), rigid, atol=1e-12)
  half = rigid_np.skin_points(points, np.full(5, 0.5), rotation, translation, pivot)
  np.testing.assert_allclose(half, 0.5 * (points + rigid), atol=1e-12)
  # Batched over transforms: (T, 3, 3) and (T, 3) give (T, V, 3).
  batched = rigid_np.skin_points(points, np.ones(5), np.stack([rotation, np.eye(3)]),
                                 np.stack([translation, np.zeros(3)]), pivot)
  np.testing.assert_allclose(batched[0], rigid, atol=1e-12)
  np.testing.assert_allclose(batched[1], points, atol=1e-12)
