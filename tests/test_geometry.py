"""6D rotations and jaw skinning identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax import geometry


def _random_rotation(rng):
  q, r = np.linalg.qr(rng.normal(size=(3, 3)))
  q = q * np.sign(np.diag(r))
  if np.linalg.det(q) < 0:
    q[:, 2] = -q[:, 2]
  return q


def test_identity_6d_is_identity():
  np.testing.assert_allclose(geometry.rotation_from_6d(jnp.asarray(geometry.IDENTITY_6D)),
                             np.eye(3), atol=1e-7)


def test_6d_gives_proper_rotations():
  x = jax.random.normal(jax.random.PRNGKey(0), (100, 6))
  r = np.asarray(geometry.rotation_from_6d(x))
  np.testing.assert_allclose(np.einsum('nji,njk->nik', r, r), np.broadcast_to(np.eye(3), r.shape),
                             atol=1e-5)
  np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)


def test_6d_round_trip():
  rng = np.random.default_rng(0)
  for _ in range(5):
    rot = _random_rotation(rng)
    back = geometry.rotation_from_6d(geometry.rotation_to_6d(jnp.asarray(rot, jnp.float32)))
    np.testing.assert_allclose(back, rot, atol=1e-5)


def test_6d_scale_invariant_and_gram_schmidt():
  x = jnp.array([2.0, 0.0, 0.0, 1.0, 3.0, 0.0])
  np.testing.assert_allclose(geometry.rotation_from_6d(x), np.eye(3), atol=1e-6)


def test_skinning_identities():
  rng = np.random.default_rng(1)
  points = jnp.asarray(rng.normal(size=(50, 3)) * 30, jnp.float32)
  pivot = jnp.array([0.0, -20.0, -40.0])
  rot = jnp.asarray(_random_rotation(rng), jnp.float32)
  trans = jnp.array([1.0, 2.0, 3.0])
  # k = 0: nothing moves; k = 1: rigid motion about the pivot.
  np.testing.assert_allclose(geometry.skin(points, jnp.zeros(50), rot, trans, pivot), points,
                             atol=1e-5)
  rigid = geometry.skin(points, jnp.ones(50), rot, trans, pivot)
  np.testing.assert_allclose(rigid, (points - pivot) @ rot.T + pivot + trans, atol=1e-4)
  d = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)
  np.testing.assert_allclose(d(np.asarray(rigid)), d(np.asarray(points)), atol=1e-3)
  # The pivot itself only translates.
  np.testing.assert_allclose(geometry.skin(pivot[None], jnp.ones(1), rot, trans, pivot)[0],
                             pivot + trans, atol=1e-5)
  # k = 1/2 is the midpoint; a batch of transforms gives a batch of shapes.
  half = geometry.skin(points, jnp.full(50, 0.5), rot, trans, pivot)
  np.testing.assert_allclose(half, 0.5 * (points + rigid), atol=1e-4)
  batch = geometry.skin(points, jnp.ones(50), jnp.stack([jnp.eye(3), rot]),
                        jnp.stack([jnp.zeros(3), trans]), pivot)
  assert batch.shape == (2, 50, 3)
  np.testing.assert_allclose(batch[1], rigid, atol=1e-5)


def test_rotation_angle():
  c, s = np.cos(0.3), np.sin(0.3)
  rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
  assert geometry.rotation_angle_deg(np.eye(3), rx) == pytest.approx(np.degrees(0.3))
