"""SIREN MLP: initialisation statistics, activations, the fast sine and its gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.models import siren


def test_init_shapes_and_bounds():
  spec = siren.MLPSpec(in_features=3, out_features=5, hidden=64, depth=3, w0=30.0)
  params = siren.init(jax.random.PRNGKey(0), spec)
  assert [p['w'].shape for p in params] == [(3, 64), (64, 64), (64, 64), (64, 5)]
  assert np.abs(params[0]['w']).max() <= 1.0 / 3
  hidden_bound = np.sqrt(6.0 / 64) / 30.0
  for layer in params[1:]:
    assert np.abs(layer['w']).max() <= hidden_bound
    assert np.abs(layer['b']).max() <= 1.0 / np.sqrt(64)
  assert np.abs(params[0]['b']).max() <= 1.0 / np.sqrt(3)


def test_init_statistics_match_uniform_variance():
  spec = siren.MLPSpec(in_features=3, out_features=1, hidden=512, depth=2, w0=30.0)
  params = siren.init(jax.random.PRNGKey(1), spec)
  w = np.asarray(params[1]['w'])
  bound = np.sqrt(6.0 / 512) / 30.0
  # U(-a, a) has std a / sqrt(3).
  assert np.std(w) == pytest.approx(bound / np.sqrt(3), rel=0.02)
  assert abs(np.mean(w)) < 0.01 * bound


def test_sine_activations_are_unit_variance_arcsine():
  # The SIREN property: with its init, pre-activations of hidden layers are ~N(0, 1)-like and
  # activations follow an arcsine law with variance 1/2, independent of depth.
  spec = siren.MLPSpec(in_features=3, out_features=1, hidden=512, depth=4, w0=30.0, sine='xla')
  params = siren.init(jax.random.PRNGKey(2), spec)
  x = jax.random.uniform(jax.random.PRNGKey(3), (4096, 3), minval=-1, maxval=1)
  for layer in params[:-1]:
    x = jnp.sin(30.0 * (x @ layer['w'] + layer['b']))
    assert float(jnp.var(x)) == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize('activation', ['relu', 'gelu'])
def test_other_activations_run(activation):
  spec = siren.MLPSpec(hidden=16, depth=2, activation=activation)
  params = siren.init(jax.random.PRNGKey(0), spec)
  out = siren.apply(params, jnp.ones((7, 3)), spec)
  assert out.shape == (7, 3)
  assert np.all(np.asarray(params[0]['b']) == 0)


def test_bad_spec_rejected():
  with pytest.raises(ValueError, match='activation'):
    siren.MLPSpec(activation='tanh')
  with pytest.raises(ValueError, match='sine'):
    siren.MLPSpec(sine='fast')


def test_fast_sin_accuracy_and_gradient():
  x = np.linspace(-200, 200, 200001).astype(np.float32)
  truth = np.sin(x.astype(np.float64))
  assert np.max(np.abs(np.asarray(jax.jit(siren.fast_sin)(x)) - truth)) < 5e-7
  grad = jax.vmap(jax.grad(siren.fast_sin))(x[::100])
  assert np.max(np.abs(np.asarray(grad) - np.cos(x[::100].astype(np.float64)))) < 5e-7


def test_poly_and_xla_sine_networks_agree():
  spec_poly = siren.MLPSpec(hidden=64, depth=3, sine='poly')
  spec_xla = siren.MLPSpec(hidden=64, depth=3, sine='xla')
  params = siren.init(jax.random.PRNGKey(4), spec_poly)
  x = jax.random.uniform(jax.random.PRNGKey(5), (256, 3), minval=-1, maxval=1)
  np.testing.assert_allclose(siren.apply(params, x, spec_poly), siren.apply(params, x, spec_xla),
                             atol=2e-5)
  g = lambda s: jax.grad(lambda p: jnp.sum(siren.apply(p, x, s) ** 2))(params)
  for a, b in zip(jax.tree_util.tree_leaves(g(spec_poly)), jax.tree_util.tree_leaves(g(spec_xla))):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
