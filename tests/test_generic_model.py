"""Tests of the generic linear 3DMM baseline (aim_jax/fitting/generic_model.py).

Synthetic arrays only, except `needs_data` tests, which use ../shared/data (or
$AIM_SHARED_DATA) and skip when it is absent.
"""

import json
import os

import numpy as np
import pytest

from aim_jax.data import ict
from aim_jax.fitting import generic_model as gm
from aim_jax.fitting import synthetic_targets
from aim_jax.fitting import targets as targets_lib

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get('AIM_SHARED_DATA') or os.path.join(_REPO, '..', 'shared', 'data')
ICT_NPZ = os.path.join(DATA, 'ict_facekit', 'ict_facekit_light.npz')
needs_data = pytest.mark.skipif(not os.path.isfile(ICT_NPZ),
                                reason=f'ICT-FaceKit data not found under {DATA}')


def _grid(rows=8, cols=9):
  """A bumpy (rows * cols, 3) mm sheet and its triangles."""
  u, v = np.meshgrid(np.linspace(-40, 40, cols), np.linspace(-50, 50, rows))
  points = np.stack([u, v, 10 * np.cos(u / 30) * np.cos(v / 40)], axis=-1).reshape(-1, 3)
  faces = []
  for r in range(rows - 1):
    for c in range(cols - 1):
      i = r * cols + c
      faces += [[i, i + 1, i + cols], [i + 1, i + cols + 1, i + cols]]
  return points, np.asarray(faces)


def _model(num_identity=6, num_expression=5, seed=0):
  mean, faces = _grid()
  rng = np.random.default_rng(seed)
  v = mean.shape[0]
  model = gm.GenericModel(mean=mean, identity=2.0 * rng.standard_normal((num_identity, v, 3)),
                          expression=3.0 * rng.standard_normal((num_expression, v, 3)))
  return model, faces


def _truth(model, num_frames=7, seed=1):
  rng = np.random.default_rng(seed)
  identity = rng.standard_normal(model.num_identity)
  expression = rng.uniform(0, 1, (num_frames, model.num_expression))
  return identity, expression, gm.generic_frames(model, identity, expression)


def test_recovers_identity_and_expression_from_dense_targets():
  model, _ = _model()
  identity, expression, frames = _truth(model)
  fit = gm.fit_generic(model, {'dense': targets_lib.dense_targets(frames)},
                       identity_prior=0.0, expression_ridge=0.0)
  np.testing.assert_allclose(fit.identity, identity, atol=1e-6)
  np.testing.assert_allclose(fit.expression, expression, atol=1e-6)
  np.testing.assert_allclose(fit.frames, frames, atol=1e-3)
  assert fit.objective < 1e-8


def test_recovers_from_markers_with_missing_ones():
  model, faces = _model()
  identity, expression, frames = _truth(model)
  markers = synthetic_targets.markers(model.mean, faces, np.ones(model.num_vertices, bool),
                                      frames, count=40, seed=0)
  visible = np.ones((frames.shape[0], 40))
  visible[0, :5] = 0.0  # Frames with different visibility patterns.
  values = np.where(visible[..., None] > 0, np.asarray(markers.values), np.nan)
  markers = targets_lib.make_target_set('markers', markers.points, values, visible)
  fit = gm.fit_generic(model, {'markers': markers}, identity_prior=0.0, expression_ridge=0.0)
  np.testing.assert_allclose(fit.identity, identity, atol=1e-4)
  np.testing.assert_allclose(fit.frames, frames, atol=1e-3)


def test_truncated_identity_leaves_a_residual():
  model, _ = _model(num_identity=6)
  identity, _, frames = _truth(model)
  dense = {'dense': targets_lib.dense_targets(frames)}
  small = gm.truncate(model, 2)
  fit = gm.fit_generic(small, dense, identity_prior=0.0, expression_ridge=0.0)
  assert fit.identity.shape == (2,)
  assert fit.objective > 1e-2
  assert np.abs(fit.frames - frames).max() > 0.1
  floor = gm.reachable_neutral(small, gm.generic_frames(model, identity, np.zeros((1, 5)))[0])
  assert floor['error_mm'].mean() > 0.1
  exact = gm.reachable_neutral(model, gm.generic_frames(model, identity, np.zeros((1, 5)))[0])
  assert exact['error_mm'].max() < 1e-6


def test_priors_shrink_coefficients_and_shapes():
  model, _ = _model()
  _, _, frames = _truth(model, num_frames=4)
  dense = {'dense': targets_lib.dense_targets(frames)}
  free = gm.fit_generic(model, dense, identity_prior=0.0, expression_ridge=0.0)
  tight = gm.fit_generic(model, dense, identity_prior=10.0, expression_ridge=10.0)
  assert np.linalg.norm(tight.identity) < np.linalg.norm(free.identity)
  assert tight.frames.shape == (4, model.num_vertices, 3)
  assert tight.expression.shape == (4, model.num_expression)
  assert tight.frames.dtype == np.float32
  zero = gm.fit_generic(gm.truncate(model, 0), dense)
  assert zero.identity.shape == (0,)


def test_mismatched_vertex_counts_raise():
  model, _ = _model()
  with pytest.raises(ValueError, match='vertices'):
    gm.GenericModel(mean=model.mean, identity=model.identity[:, :-1],
                    expression=model.expression)
  frames = np.zeros((2, model.num_vertices + 3, 3))
  with pytest.raises(ValueError, match=f'model has {model.num_vertices} vertices'):
    gm.fit_generic(model, {'dense': targets_lib.dense_targets(frames)})
  with pytest.raises(ValueError, match='shape'):
    gm.reachable_neutral(model, frames[0])


def test_rejects_landmarks_and_bad_priors():
  model, _ = _model()
  _, _, frames = _truth(model, num_frames=2)
  dense = {'dense': targets_lib.dense_targets(frames)}
  with pytest.raises(ValueError, match='prior'):
    gm.fit_generic(model, dense, identity_prior=-1.0)
  landmarks = targets_lib.TargetSet(kind='landmarks', points=dense['dense'].points,
                                    values=np.zeros((2, model.num_vertices, 2)),
                                    visible=np.ones((2, model.num_vertices)))
  with pytest.raises(ValueError, match='3D targets'):
    gm.fit_generic(model, {'landmarks': landmarks})


def test_actor_vertex_ids(tmp_path):
  with open(tmp_path / 'bone_report.json', 'w') as f:
    json.dump({'region': 'narrow_face'}, f)
  ids = gm.ict_actor_vertex_ids(str(tmp_path), 6706)
  np.testing.assert_array_equal(ids, np.arange(6706))
  with pytest.raises(ValueError, match='6706 vertices but the actor has 10'):
    gm.ict_actor_vertex_ids(str(tmp_path), 10)
  with pytest.raises(ValueError, match='ICT actor'):
    gm.ict_actor_vertex_ids(str(tmp_path / 'missing'))


@needs_data
def test_ict_performance_is_exact_with_every_mode_and_not_with_few():
  model = ict.load_ict_model(ICT_NPZ)
  ids = ict.region_ids('narrow_face')
  coefficients = ict.identity_coefficients(model, seed=0)
  head = ict.identity_neutral(model, coefficients)
  weights = ict.performance_weights(model, 6, seed=1)
  full = np.zeros((6, len(model.expression_names)))
  full[:, :ict.NUM_EXPRESSIONS] = weights
  frames = ict.blend(model, head, full, ids)
  dense = {'dense': targets_lib.dense_targets(frames)}
  generic = gm.from_ict(model, ids, model.identity_deltas.shape[0])
  fit = gm.fit_generic(generic, dense, identity_prior=0.0, expression_ridge=0.0)
  assert np.abs(fit.frames - frames).max() < 1e-2
  np.testing.assert_allclose(fit.identity, coefficients, atol=1e-2)
  small = gm.fit_generic(gm.truncate(generic, 20), dense)
  error = np.linalg.norm(small.frames - frames, axis=-1).mean()
  assert error > 0.05


# ---------------------------------------------------------------------------------------------
# The comparison helpers (aim_jax/fitting/comparison.py).


def test_comparison_outputs_on_tiny_actor(tiny_actor, tmp_path):
  from aim_jax.fitting import comparison
  actor = tiny_actor
  v = actor.num_vertices
  rng = np.random.default_rng(0)
  model = gm.GenericModel(mean=actor.neutral + 0.5, identity=rng.standard_normal((3, v, 3)),
                          expression=np.asarray(actor.shapes[1:] - actor.shapes[:1], np.float64))
  frames = np.asarray(actor.shapes, np.float32)
  truth = {'frames': frames}
  generics = {comparison.generic_name(k): gm.truncate(model, k) for k in (1, 3)}
  results, stats = {}, {}
  for kind in comparison.TARGET_KINDS:
    targets = comparison.performance_targets(actor, frames, kind, num_markers=20)
    assert set(targets) == {kind}
    fits, seconds = comparison.fit_generic_models(generics, targets, 1e-3, 1e-4)
    assert set(seconds) == set(generics)
    results[kind] = fits
    stats[kind] = {n: {'mean': 0.1, 'median': 0.05, 'p95': 0.3} for n in fits}
  floors = comparison.identity_floors(generics, actor)
  assert floors['generic_k3'].shape == (v,)
  table = comparison.markdown_table({
      'actor': actor.name, 'num_frames': 3, 'num_markers': 20, 'error_mm': stats,
      'jaw': {'dense': {}}, 'identity_floor_mm': {'generic_k1': stats['dense']['generic_k1']}})
  assert '| generic_k1 | 0.100 / 0.050 / 0.300 | 0.100 / 0.050 / 0.300 | - | - |' in table
  frame = comparison.expressive_frame(frames, actor.neutral, actor.region)
  assert 0 <= frame < frames.shape[0]
  path = comparison.render_comparison(str(tmp_path / 'c.png'), actor, truth, results, frame,
                                      floors, list(generics))
  assert os.path.getsize(path) > 1000
  with pytest.raises(ValueError, match='target kind'):
    comparison.performance_targets(actor, frames, 'landmarks')


def test_load_performance_checks_vertices(tmp_path):
  from aim_jax.fitting import comparison
  np.savez(tmp_path / 'performance.npz', frames=np.zeros((2, 5, 3)),
           jaw_rotation=np.tile(np.eye(3), (2, 1, 1)), jaw_translation=np.zeros((2, 3)))
  truth = comparison.load_performance(str(tmp_path), 5)
  assert truth['frames'].shape == (2, 5, 3)
  with pytest.raises(ValueError, match='has 6 vertices'):
    comparison.load_performance(str(tmp_path), 6)
  with pytest.raises(ValueError, match='performance'):
    comparison.load_performance(str(tmp_path / 'none'), 5)
