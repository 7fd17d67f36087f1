"""Each L_Model term on known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax import losses

PLANE = jnp.array([1.0, 0.0, 0.0, 0.0])


def test_reconstruction_known_value():
  target = jnp.zeros((2, 4, 3))
  predicted = target.at[:, :, 0].set(2.0)
  assert float(losses.reconstruction(predicted, target)) == pytest.approx(4.0)
  assert float(losses.reconstruction(target, target)) == 0.0


def test_bone_points_and_normals():
  bone = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
  assert float(losses.bone_points(bone, bone + jnp.array([0.0, 3.0, 4.0]))) == pytest.approx(25.0)
  n = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
  assert float(losses.bone_normals(n, n)) == pytest.approx(0.0)
  assert float(losses.bone_normals(n, -n)) == pytest.approx(2.0)
  assert float(losses.bone_normals(n, n[::-1])) == pytest.approx(1.0)


def test_thickness_terms():
  d = jnp.array([1.0, 2.0, 3.0])
  assert float(losses.thickness_match(d, d)) == 0.0
  assert float(losses.thickness_match(d, d + 2.0)) == pytest.approx(4.0)
  assert float(losses.thickness_small(d)) == pytest.approx((1 + 4 + 9) / 3)


def test_skinning_terms():
  assert float(losses.skinning_prior(jnp.array([0.0, 1.0]), jnp.array([0, 1]))) == 0.0
  assert float(losses.skinning_prior(jnp.array([1.0, 0.0]), jnp.array([0, 1]))) == 1.0
  k = jnp.array([0.2, 0.4])
  assert float(losses.skinning_smoothness(k, k)) == 0.0
  assert float(losses.skinning_smoothness(k, k + 0.1)) == pytest.approx(0.01)


def _fields(rng, n):
  normal = rng.normal(size=(n, 3))
  return {'bone': jnp.asarray(rng.normal(size=(n, 3)) * 30),
          'normal': jnp.asarray(normal / np.linalg.norm(normal, axis=-1, keepdims=True)),
          'thickness': jnp.asarray(rng.uniform(3, 20, n)),
          'skinning': jnp.asarray(rng.uniform(0, 1, n))}


def test_symmetry_zero_for_mirror_images_positive_otherwise():
  rng = np.random.default_rng(0)
  fields = _fields(rng, 10)
  mirrored = {'bone': losses.reflect(fields['bone'], PLANE),
              'normal': losses.reflect_direction(fields['normal'], PLANE),
              'thickness': fields['thickness'], 'skinning': fields['skinning']}
  valid = jnp.ones(10, bool)
  assert float(losses.symmetry(fields, mirrored, PLANE, valid)) == pytest.approx(0.0, abs=1e-5)
  assert float(losses.symmetry(fields, fields, PLANE, valid)) > 1.0
  # Points without a partner do not count.
  assert float(losses.symmetry(fields, fields, PLANE, jnp.zeros(10, bool))) == 0.0


def test_bone_symmetry_reads_the_bone_alone():
  rng = np.random.default_rng(2)
  fields = _fields(rng, 8)
  valid = jnp.ones(8, bool)
  mirrored_bone = losses.reflect(fields['bone'], PLANE)
  assert float(losses.bone_symmetry(fields['bone'], mirrored_bone, PLANE, valid)) == (
      pytest.approx(0.0, abs=1e-4))
  # A bone 2 mm off its mirror image everywhere: 4 mm^2, whatever D and N do.
  shifted = mirrored_bone + jnp.array([0.0, 2.0, 0.0])
  assert float(losses.bone_symmetry(fields['bone'], shifted, PLANE, valid)) == pytest.approx(4.0)
  half = jnp.arange(8) < 4
  assert float(losses.bone_symmetry(fields['bone'], shifted.at[4:].add(100.0), PLANE, half)) == (
      pytest.approx(4.0))


def test_reflect_is_an_involution_about_an_offset_plane():
  plane = jnp.array([0.6, 0.8, 0.0, 5.0])
  p = jnp.asarray(np.random.default_rng(1).normal(size=(6, 3)))
  np.testing.assert_allclose(losses.reflect(losses.reflect(p, plane), plane), p, atol=1e-5)
  on_plane = jnp.array([[3.0, 4.0, 7.0]]) * 5.0 / 5.0  # 0.6*3 + 0.8*4 = 5.
  np.testing.assert_allclose(losses.reflect(on_plane, plane), on_plane, atol=1e-5)


def test_thickness_smoothness_and_expression_small_known_answers():
  d = jnp.array([1.0, 2.0, 3.0])
  assert float(losses.thickness_smoothness(d, d)) == 0.0
  assert float(losses.thickness_smoothness(d, d + 2.0)) == pytest.approx(4.0)
  deltas = jnp.zeros((4, 2, 3)).at[:, :, 0].set(3.0).at[:, :, 1].set(4.0)
  assert float(losses.expression_small(deltas)) == pytest.approx(25.0)


def test_bone_and_normal_smoothness_known_answers():
  c = jnp.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
  j = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
  affine = lambda x: x @ jnp.array([[0.5, 0.0, 0.1], [0.0, 0.6, 0.0], [0.0, 0.2, 0.7]]) - 12.0
  # Any affine bone map (flat, sheared, shrunk bone) has no second difference.
  assert float(losses.bone_smoothness(affine(c), affine(c + j), affine(c - j))) == (
      pytest.approx(0.0, abs=1e-10))
  # A bent bone, B(c) = c + (0, 0, x^2 / 4): second difference (0, 0, 2 jx^2 / 4) = (0, 0, 0.5)
  # at the first point (jx = 1) and 0 at the second: mean 0.25 / 2.
  bent = lambda x: x + jnp.stack([0 * x[:, 0], 0 * x[:, 0], x[:, 0] ** 2 / 4], -1)
  assert float(losses.bone_smoothness(bent(c), bent(c + j), bent(c - j))) == (
      pytest.approx(0.125))
  n = jnp.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
  assert float(losses.normal_smoothness(n, n)) == pytest.approx(0.0)
  assert float(losses.normal_smoothness(n, jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))) == (
      pytest.approx(0.5))


def _skin_normal(triangles):
  a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
  n = np.cross(b - a, c - a)
  return jnp.asarray(n / np.sum(n ** 2, axis=-1, keepdims=True))


def test_fold_is_zero_for_a_shrunken_copy_and_penalises_a_flipped_triangle():
  skin = np.array([[[0.0, 0.0, 10.0], [4.0, 0.0, 10.0], [0.0, 4.0, 10.0]],
                   [[4.0, 0.0, 10.0], [4.0, 4.0, 10.0], [0.0, 4.0, 10.0]]])
  normal = _skin_normal(skin)
  bone = skin * np.array([0.5, 0.5, 1.0]) - np.array([0.0, 0.0, 8.0])  # Area ratio 1/4.
  assert float(losses.fold(jnp.asarray(bone), normal)) == 0.0
  assert float(losses.fold(jnp.asarray(bone), normal, margin=0.5)) == pytest.approx(0.25)
  flipped = bone.copy()
  flipped[1] = flipped[1][[0, 2, 1]]  # Second triangle wound the other way: ratio -1/4.
  assert float(losses.fold(jnp.asarray(flipped), normal)) == pytest.approx(0.125)
  # The penalty unfolds: its gradient moves the flipped triangle's corners, not the other's.
  grad = np.asarray(jax.grad(lambda t: losses.fold(t, normal))(jnp.asarray(flipped)))
  assert np.abs(grad[1]).max() > 0 and np.abs(grad[0]).max() == 0


def test_depth_prior_is_the_masked_mean_squared_difference():
  thickness = jnp.array([5.0, 7.0, 9.0, 100.0])
  prior = jnp.array([5.0, 5.0, 6.0, 0.0])
  mask = jnp.array([True, True, True, False])  # The last vertex has no trusted bone.
  assert float(losses.depth_prior(thickness, prior, mask)) == pytest.approx((0 + 4 + 9) / 3)
  assert float(losses.depth_prior(thickness, prior, jnp.zeros(4, bool))) == 0.0
