"""The coefficient field's smoothness and shrinkage (fitting between sparse markers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.fitting import coefficient_field, mesh_topology
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import model as model_lib


def grid(n=7):
  """A flat n x n grid of 1 mm squares, each split into two triangles along the same diagonal
  (every interior vertex has six neighbours, in opposite pairs)."""
  xs, ys = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32))
  points = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n, np.float32)], axis=1)
  faces = []
  for i in range(n - 1):
    for j in range(n - 1):
      a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
      faces += [(a, b, d), (a, d, c)]
  return points, np.asarray(faces)


def test_topology_of_a_grid():
  points, faces = grid(5)
  topology = mesh_topology.make_topology(faces, len(points))
  np.testing.assert_allclose(np.asarray(topology.weights).sum(axis=1), 1.0, rtol=1e-6)
  interior = np.asarray(topology.interior)
  on_edge = (points[interior, :2] == 0).any(axis=1) | (points[interior, :2] == 4).any(axis=1)
  assert len(interior) == 9 and not on_edge.any()
  centre = 12
  assert sorted(np.asarray(topology.neighbours)[centre][:6]) == [6, 7, 11, 13, 17, 18]
  region = np.zeros(len(points), bool)
  region[[6, 7]] = True
  assert list(np.asarray(mesh_topology.make_topology(faces, len(points), region).interior)) == [6,
                                                                                                7]
  with pytest.raises(ValueError, match='no interior vertex'):
    mesh_topology.make_topology(faces, len(points), np.zeros(len(points), bool))


def test_samples_are_distinct_interior_vertices():
  points, faces = grid(9)
  topology = mesh_topology.make_topology(faces, len(points))
  ids = np.asarray(mesh_topology.sample_vertices(topology, jax.random.PRNGKey(3), 20))
  assert len(set(ids.tolist())) == 20 and set(ids.tolist()) <= set(np.asarray(
      topology.interior).tolist())
  assert len(mesh_topology.sample_vertices(topology, jax.random.PRNGKey(3), 1000)) == 49


def test_umbrella_leaves_a_smooth_field_alone_and_sees_a_bump():
  points, faces = grid(7)
  topology = mesh_topology.make_topology(faces, len(points))
  ids = topology.interior
  umbrella = coefficient_field.umbrella(topology.weights[ids])
  gather = lambda f: jnp.concatenate([f[ids], f[topology.neighbours[ids].reshape(-1)]])
  linear = jnp.asarray(points[:, :2] @ np.array([[0.3, -1.0], [2.0, 0.5]], np.float32))
  np.testing.assert_allclose(umbrella(gather(linear)), 0.0, atol=1e-5)
  bump = jnp.zeros(len(points)).at[24].set(1.0)  # The centre vertex.
  out = np.asarray(umbrella(gather(bump)))
  assert out[list(np.asarray(ids)).index(24)] == pytest.approx(1.0)
  assert out.min() == pytest.approx(-1.0 / 6.0)


def _spec(variant, num_coefficients=3):
  return model_lib.FitSpec(num_coefficients=num_coefficients, code_dim=4, hidden=8, depth=2,
                           rank=4, variant=variant, w0=3.0)


def _params(spec, frames=3, seed=0):
  params = model_lib.init(jax.random.PRNGKey(seed), spec, frames)
  # Random last layers, so the fields are not zero.
  return jax.tree_util.tree_map(
      lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(seed + 1), x.shape), params)


def test_global_blend_has_no_smoothness_or_shrinkage():
  points, faces = grid(6)
  topology = mesh_topology.make_topology(faces, len(points))
  spec = _spec('global')
  terms = coefficient_field.regularisers(_params(spec), spec, jnp.asarray(points / 5.0),
                                         topology, topology.interior, jnp.ones(3))
  assert float(terms['coefficient_smooth']) == pytest.approx(0.0, abs=1e-10)
  assert float(terms['coefficient_shrink']) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize('variant', ['separable', 'per_point'])
def test_energy_matches_the_explicit_field(variant):
  """The separable Gram-matrix path and the per-point path compute mean (M w)^2 over valid
  frames, as forming w does."""
  points, faces = grid(6)
  topology = mesh_topology.make_topology(faces, len(points))
  spec = _spec(variant)
  params = _params(spec, frames=4)
  coords = jnp.asarray(points / 5.0)
  valid = jnp.asarray([1.0, 1.0, 0.0, 1.0])
  ids = topology.interior[:5]
  terms = coefficient_field.regularisers(params, spec, coords, topology, ids, valid)
  w = np.asarray(model_lib.coefficients(params, coords, spec))  # (F, V, S-1)
  nb, lam = np.asarray(topology.neighbours)[ids], np.asarray(topology.weights)[ids]
  lap = w[:, ids] - np.einsum('pk,fpks->fps', lam, w[:, nb])
  centred = w[:, ids] - w[:, ids].mean(axis=1, keepdims=True)
  keep = np.asarray(valid) > 0
  assert float(terms['coefficient_smooth']) == pytest.approx(np.mean(lap[keep] ** 2), rel=1e-4)
  assert float(terms['coefficient_shrink']) == pytest.approx(np.mean(centred[keep] ** 2),
                                                             rel=1e-4)
  grads = jax.grad(lambda p: sum(coefficient_field.regularisers(
      p, spec, coords, topology, ids, valid).values()))(params)
  assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))


def test_weighted_field_terms_need_a_topology(actor, oracle):
  from aim_jax.fitting import targets as targets_lib
  from configs import fit_test
  config = fit_test.get_config()
  config.loss.coefficient_smooth = 0.0
  config.loss.coefficient_shrink = 1.0
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  from aim_jax.fitting import synthetic_targets
  config.train.num_steps = 2
  markers = {'markers': synthetic_targets.markers(actor.neutral, actor.faces, actor.region,
                                                  actor.shapes[:2], count=10)}
  with pytest.raises(ValueError, match='coefficient_shrink is weighted but'):
    fit_lib.fit_frames(config, spec, {'basis': oracle}, markers, log=None)
  # With dense targets the terms are off, and no topology is needed.
  dense = {'dense': targets_lib.dense_targets(actor.shapes[:2])}
  _, history = fit_lib.fit_frames(config, spec, {'basis': oracle}, dense, log=None)
  assert 'coefficient_shrink' not in history[-1]
