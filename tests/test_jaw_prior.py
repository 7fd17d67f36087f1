"""The jaw-blend prior of fitting (aim_jax/fitting/jaw_prior.py): known answers, the padding
mask, gradients, and its place in the fitting loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax import geometry
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import jaw_prior, synthetic_targets
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from configs import fit_test


def _rotation_x(deg):
  a = np.deg2rad(deg)
  return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]],
                  np.float32)


def _params(rotations, translations):
  """Learned-model params holding only the per-shape jaws (shapes 1..S-1)."""
  return {'jaw': {'rot6d': geometry.rotation_to_6d(jnp.asarray(np.stack(rotations))),
                  'translation': jnp.asarray(np.asarray(translations, np.float32))}}


def _prior():
  rng = np.random.default_rng(0)
  mandible = rng.normal(size=(200, 3)).astype(np.float32) * 20 + [0, -40, 10]
  pivot = np.array([0.0, -10.0, -30.0], np.float32)
  params = _params([_rotation_x(20), np.eye(3, dtype=np.float32)], [[0, 0, 0], [0, 0, 3.0]])
  return jaw_prior.make_jaw_prior(params, mandible, pivot, num_probes=32), params


def test_probes_are_spread_mandible_vertices():
  vertices = np.arange(30, dtype=np.float32).reshape(10, 3)
  probes = jaw_prior.probe_points(vertices, 4)
  assert probes.shape == (4, 3)
  np.testing.assert_array_equal(probes[0], vertices[0])
  np.testing.assert_array_equal(probes[-1], vertices[-1])
  assert jaw_prior.probe_points(vertices, 50).shape == (10, 3)
  with pytest.raises(ValueError, match=r'\(N, 3\)'):
    jaw_prior.probe_points(np.zeros((5, 2)), 4)


def test_shape_motion_is_each_learned_jaws_displacement():
  prior, _ = _prior()
  assert prior.probes.shape == (32, 3) and prior.shape_motion.shape == (2, 32, 3)
  np.testing.assert_allclose(prior.shape_motion[1], np.broadcast_to([0, 0, 3.0], (32, 3)),
                             atol=1e-5)
  expected = (np.asarray(prior.probes) - prior.pivot) @ _rotation_x(20).T + prior.pivot
  np.testing.assert_allclose(prior.shape_motion[0], expected - prior.probes, atol=1e-3)


def test_zero_at_the_blend_and_the_known_value_elsewhere():
  prior, _ = _prior()
  # Frame 0 is all of shape 2 (a 3 mm translation): its jaw moved 3 mm has no penalty.
  # Frame 1 blends half of shape 2 but keeps the rest jaw: 1.5 mm off -> 2.25 mm^2.
  blend = jnp.asarray([[0.0, 1.0], [0.0, 0.5]])
  rotation = jnp.broadcast_to(jnp.eye(3), (2, 3, 3))
  translation = jnp.asarray([[0, 0, 3.0], [0, 0, 0]], jnp.float32)
  both = jaw_prior.blend_term(prior, rotation, translation, blend, jnp.ones(2))
  assert float(both) == pytest.approx(2.25 / 2, rel=1e-5)
  first = jaw_prior.blend_term(prior, rotation, translation, blend, jnp.asarray([1.0, 0.0]))
  assert float(first) == pytest.approx(0.0, abs=1e-8)


def test_a_learned_rotation_blend_is_reached_by_the_gradient():
  prior, _ = _prior()
  blend = jnp.asarray([[1.0, 0.0]])
  angle = jnp.zeros(())

  def loss(angle):
    c, s = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.stack([jnp.asarray([1.0, 0.0, 0.0]), jnp.stack([0.0, c, -s]),
                          jnp.stack([0.0, s, c])])
    return jaw_prior.blend_term(prior, rotation[None], jnp.zeros((1, 3)), blend, jnp.ones(1))

  grad = jax.grad(loss)
  assert np.isfinite(float(grad(angle))) and float(grad(angle)) < 0  # Opens toward 20 deg.
  for _ in range(200):
    angle = angle - 2e-4 * grad(angle)
  assert np.rad2deg(float(angle)) == pytest.approx(20.0, abs=0.2)
  assert float(loss(angle)) < 1e-3 * float(loss(jnp.zeros(())))


def test_the_blend_gets_no_gradient():
  prior, _ = _prior()
  blend = jnp.full((1, 2), 0.5)
  rotation, translation = jnp.eye(3)[None], jnp.zeros((1, 3))
  assert float(jaw_prior.blend_term(prior, rotation, translation, blend, jnp.ones(1))) > 0
  grad = jax.grad(lambda b: jaw_prior.blend_term(prior, rotation, translation, b,
                                                 jnp.ones(1)))(blend)
  np.testing.assert_array_equal(np.asarray(grad), 0.0)


def test_the_fit_takes_the_term_only_when_weighted_and_given(actor, oracle):
  config = fit_test.get_config()
  config.train.num_steps = 3
  config.loss.coefficient_smooth = config.loss.coefficient_shrink = 0.0
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  truth = actor.ground_truth
  params = _params(list(truth.jaw_rotation[1:]), truth.jaw_translation[1:])
  aim_spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  jaw = jaw_prior.JawModel(jaw_prior.make_jaw_prior(params, actor.mandible.vertices, actor.pivot),
                           basis_lib.gbs_basis(actor.shapes, actor.neutral, aim_spec))
  markers = {'markers': synthetic_targets.markers(actor.neutral, actor.faces, actor.region,
                                                  actor.shapes[:2], count=150)}
  config.loss.jaw_blend = 0.0
  assert 'jaw_blend' not in fit_lib.fit_source(oracle, jaw=jaw, config=config, targets=markers)
  config.loss.jaw_blend = 1.0
  source = fit_lib.fit_source(oracle, jaw=jaw, config=config, targets=markers)
  # The blend is the frames' GBS solve (the neutral, then shape 1): the prior is near zero at
  # the true jaws and not at the rest jaw.
  rest = jnp.broadcast_to(jnp.eye(3), (2, 3, 3))
  at_truth = jaw_prior.blend_term(jaw.prior, jnp.stack([rest[0], truth.jaw_rotation[1]]),
                                  jnp.stack([jnp.zeros(3), truth.jaw_translation[1]]),
                                  source['jaw_blend'], jnp.ones(2))
  at_rest = jaw_prior.blend_term(jaw.prior, rest, jnp.zeros((2, 3)), source['jaw_blend'],
                                 jnp.ones(2))
  assert float(at_truth) < 0.01 * float(at_rest) and float(at_rest) > 1.0
  _, history = fit_lib.fit_frames(config, spec, source, markers, log=None)
  assert np.isfinite(history[-1]['jaw_blend']) and history[-1]['jaw_blend'] >= 0
  _, history = fit_lib.fit_frames(config, spec, {'basis': oracle}, markers, log=None)
  assert 'jaw_blend' not in history[-1]  # No prior in the source: skipped.
  # Like the coefficient-field terms, a sparse prior: off for kinds outside loss.field_kinds.
  dense = {'dense': targets_lib.dense_targets(actor.shapes[:2])}
  assert 'jaw_blend' not in fit_lib.fit_source(oracle, jaw=jaw, config=config, targets=dense)
