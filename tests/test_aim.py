"""The AIM ensemble (aim_jax/models/aim.py): shapes, identities at initialisation, layouts, chunked
evaluation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.models import aim


def _spec(**kw):
  rng = np.random.default_rng(0)
  template = rng.uniform(-70, 70, size=(300, 3)).astype(np.float32)
  fields = dict(hidden=32, depth=2)
  fields.update(kw)
  return template, aim.make_spec(template, np.array([0.0, -30.0, -40.0]), 5, **fields)


def test_normalisation_maps_into_unit_cube():
  template, spec = _spec()
  x = np.asarray(aim.normalize_points(jnp.asarray(template), spec))
  assert np.abs(x).max() <= 1.0


def test_output_shapes_and_ranges():
  template, spec = _spec()
  params = aim.init(jax.random.PRNGKey(0), spec)
  fields = aim.anatomy(params, jnp.asarray(template), spec, aim.NETWORKS)
  assert fields['bone'].shape == (300, 3) and fields['expression'].shape == (300, 4, 3)
  np.testing.assert_allclose(np.linalg.norm(fields['normal'], axis=-1), 1.0, atol=1e-5)
  assert np.all(np.asarray(fields['thickness']) >= 0)
  k = np.asarray(fields['skinning'])
  assert np.all((k >= 0) & (k <= 1))
  shapes = aim.reconstruct(params, jnp.asarray(template), spec)
  assert shapes.shape == (5, 300, 3)


def test_identity_jaws_at_init_so_shapes_are_neutral_plus_deltas():
  template, spec = _spec()
  params = aim.init(jax.random.PRNGKey(1), spec)
  rotation, translation = aim.jaw_transforms(params)
  np.testing.assert_allclose(rotation, np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-6)
  np.testing.assert_allclose(translation, 0.0)
  fields = aim.anatomy(params, jnp.asarray(template), spec, aim.NETWORKS)
  shapes = aim.reconstruct(params, jnp.asarray(template), spec)
  s0 = aim.neutral_from_anatomy(fields)
  np.testing.assert_allclose(shapes[0], s0, atol=1e-4)
  np.testing.assert_allclose(shapes[1:], s0[None] + jnp.moveaxis(fields['expression'], 1, 0),
                             atol=1e-4)


def test_stacked_layout_matches_loop():
  template, spec_loop = _spec(layout='loop')
  _, spec_stacked = _spec(layout='stacked')
  params = aim.init(jax.random.PRNGKey(2), spec_loop)
  a = aim.reconstruct(params, jnp.asarray(template), spec_loop)
  b = aim.reconstruct(params, jnp.asarray(template), spec_stacked)
  np.testing.assert_allclose(a, b, atol=1e-4)


def test_chunked_evaluation_matches_direct():
  template, spec = _spec()
  params = aim.init(jax.random.PRNGKey(3), spec)
  direct = aim.reconstruct(params, jnp.asarray(template), spec)
  chunked = aim.evaluate_chunked(params, template, spec, chunk=128)
  np.testing.assert_allclose(chunked['shapes'], direct, atol=1e-4)
  assert chunked['thickness'].shape == (300,)


def test_gradients_reach_every_network_and_jaw():
  template, spec = _spec()
  params = aim.init(jax.random.PRNGKey(4), spec)
  target = jnp.asarray(np.random.default_rng(1).normal(size=(5, 300, 3)))
  grads = jax.grad(lambda p: jnp.sum((aim.reconstruct(p, jnp.asarray(template), spec)
                                      - target) ** 2))(params)
  for name in aim.NETWORKS:
    assert float(jnp.abs(grads[name][0]['w']).sum()) > 0, name
  assert float(jnp.abs(grads['jaw']['rot6d']).sum()) > 0


def test_bad_spec():
  with pytest.raises(ValueError, match='layout'):
    _spec(layout='fused')


def test_anatomy_networks_may_have_their_own_activation_and_frequency():
  template = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32) * 40
  spec = aim.make_spec(template, np.zeros(3), 3, anatomy_activation='gelu', anatomy_w0=5.0)
  for name in aim.ANATOMY_NETWORKS:
    assert spec.mlp(name).activation == 'gelu' and spec.mlp(name).w0 == 5.0
  assert spec.mlp('expression').activation == 'sine' and spec.mlp('expression').w0 == 30.0
  plain = aim.make_spec(template, np.zeros(3), 3)
  assert plain.mlp('bone') == dataclasses.replace(plain.mlp('expression'), out_features=3)
  with pytest.raises(ValueError, match='activation'):
    aim.make_spec(template, np.zeros(3), 3, anatomy_activation='swish')
