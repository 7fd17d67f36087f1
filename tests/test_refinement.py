"""The frame-by-frame refinement of a batch fit (aim_jax/fitting/refinement.py): known answers
on a small synthetic actor (a batch solution short of the truth by regions' coefficients is
finished, its jaw kept; noise around the batch solution is left alone), the held-out points
never used, the structured data Gram matrix, and the whole path through
`methods.fit_method`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_models import make_model_workdir

from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import methods, refinement, tracking
from aim_jax.fitting import targets as targets_lib
from aim_jax.runs import fit as fit_run
from configs import fit_test

REGIONS = 3


def _config(pulls='1000,1,0.001'):
  config = fit_test.get_config()
  config.refine.regions = REGIONS
  config.refine.pulls = pulls
  config.refine.held_out = 0.2
  config.refine.choice_frames = 3
  return config


def _batch(basis, config, num_frames=4, seed=0):
  """(spec, params: random networks and codes, as a batch fit would leave them, the tracking
  basis, the frames' batch unknowns (F, n))."""
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  params = fit_lib.init_params(config, spec, num_frames)
  leaves, tree = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  params = jax.tree_util.tree_unflatten(
      tree, [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  networks = {k: v for k, v in params.items() if k != 'codes'}
  tb = tracking.tracking_basis(networks, basis, spec, int(config.loss.regularized_points),
                               REGIONS)
  us = jax.vmap(lambda z: tracking.unknowns_of(networks, z, spec, REGIONS))(params['codes'])
  return spec, params, tb, us


def _frames(tb, spec, us):
  ids = jnp.arange(tb.neutral.shape[0])
  return np.asarray(jax.vmap(lambda u: tracking.frame_points(tb, u, spec, ids))(us))


def test_structured_data_gram_is_the_designs_product(small_oracle):
  _, basis = small_oracle
  spec, _, tb, _ = _batch(basis, _config())
  points = targets_lib.at_vertices(np.arange(0, basis.num_vertices, 2))
  values = np.zeros((1, points.count, 3), np.float32)
  target = targets_lib.TargetSet(kind='dense', points=points, values=values,
                                 visible=np.ones((1, points.count), np.float32))
  design = tracking._design(tb, target)
  rows = jnp.asarray(np.random.default_rng(0).uniform(0.0, 1.0, points.count), jnp.float32)
  plain = np.asarray(jnp.einsum('mdc,m,mde->ce', design, rows, design))
  structured = np.asarray(tracking.data_gram(tb, target, rows, design))
  np.testing.assert_allclose(structured, plain, rtol=1e-4, atol=1e-4 * np.abs(plain).max())


def test_a_batch_fit_short_of_the_truth_is_finished_and_noise_is_left_alone(small_oracle):
  """Targets the batch solution misses by regions' coefficients (which the batch networks
  cannot express) are reached at the weakest pull, chosen by the hidden points; targets that
  are the batch solution plus noise keep the strongest pull and stay near the batch frames."""
  _, basis = small_oracle
  config = _config()
  spec, params, tb, us = _batch(basis, config)
  n, s = spec.transform_outputs, spec.num_coefficients
  shift = np.zeros(us.shape, np.float32)
  shift[:, n:n + REGIONS * s] = np.random.default_rng(1).normal(
      0.0, 0.5, (us.shape[0], REGIONS * s))
  truth = _frames(tb, spec, us + shift)
  batch = _frames(tb, spec, us)
  refined = refinement.refine_frames(config, spec, basis,
                                     params, {'dense': targets_lib.dense_targets(truth)},
                                     log=None)
  assert refined['refine_pull'][0] == pytest.approx(0.001)
  before, after = np.abs(batch - truth).max(), np.abs(refined['frames'] - truth).max()
  assert after < 0.05 * before
  assert refined['frames'].shape == truth.shape
  assert refined['coefficients'].shape == (us.shape[0], basis.num_vertices, s)
  np.testing.assert_array_equal(refined['codes'], np.asarray(params['codes']))
  # The jaw stays the batch fit's.
  batch_jaw = tracking.evaluate_unknowns(tb, us, spec)
  for key in ('jaw_rotation', 'jaw_translation'):
    np.testing.assert_allclose(refined[key], np.asarray(batch_jaw[key]), atol=1e-6)

  noise = np.random.default_rng(2).normal(0.0, 0.2, batch.shape).astype(np.float32)
  kept = refinement.refine_frames(config, spec, basis, params,
                                  {'dense': targets_lib.dense_targets(batch + noise)}, log=None)
  assert kept['refine_pull'][0] in (1000.0, 0.0)  # The strongest pull, or the batch (0).
  assert np.abs(kept['frames'] - batch).mean() < 0.1 * np.abs(noise).mean()


def test_hidden_points_are_never_used_by_the_refinement(small_oracle):
  """With one pull (no choice), moving the held-out points' values changes nothing."""
  _, basis = small_oracle
  config = _config(pulls='0.01')
  spec, params, tb, us = _batch(basis, config)
  frames = _frames(tb, spec, us) + 0.3
  targets = {'dense': targets_lib.dense_targets(frames)}
  hidden = refinement.held_out_split(targets, float(config.refine.held_out), config.seed)
  assert 0 < hidden['dense'].sum() < basis.num_vertices
  moved = frames.copy()
  moved[:, hidden['dense']] += 5.0
  a = refinement.refine_frames(config, spec, basis, params, targets, log=None)
  b = refinement.refine_frames(config, spec, basis, params,
                               {'dense': targets_lib.dense_targets(moved)}, log=None)
  np.testing.assert_array_equal(a['refine_unknowns'], b['refine_unknowns'])
  # The same split for the same seed; another seed hides other points.
  again = refinement.held_out_split(targets, float(config.refine.held_out), config.seed)
  np.testing.assert_array_equal(again['dense'], hidden['dense'])
  other = refinement.held_out_split(targets, float(config.refine.held_out), config.seed + 1)
  assert not np.array_equal(other['dense'], hidden['dense'])


def test_refinement_applies_to_aim_with_dense_targets_only(small_oracle):
  actor, basis = small_oracle
  config = _config()
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  dense = {'dense': targets_lib.dense_targets(actor.shapes[:2])}
  assert refinement.applies(config, spec, dense)
  assert not refinement.applies(config, fit_lib.fit_spec(config, basis.num_coefficients,
                                                         'global'), dense)
  markers = {'markers': targets_lib.TargetSet(
      kind='markers', points=targets_lib.at_vertices(np.arange(10)),
      values=np.zeros((2, 10, 3), np.float32), visible=np.ones((2, 10), np.float32))}
  assert not refinement.applies(config, spec, markers)
  config.refine.regions = 0
  assert not refinement.applies(config, spec, dense)


def test_aim_fits_dense_targets_with_the_refinement_through_the_methods(tmp_path, small_oracle):
  actor, basis = small_oracle
  model = basis_lib.FitModel(params={}, spec=None, info={}, actor=actor, basis=basis,
                             gbs_basis=basis)
  config = _config()
  config.synthetic.num_frames = 4
  targets, truth = methods.synthetic_sequence_targets(config, actor)
  out = methods.fit_method('aim', config, model, targets, str(tmp_path))
  assert out['frames'].shape == truth['frames'].shape and np.isfinite(out['frames']).all()
  assert out['refine_pull'].shape == (4,) and out['refine_held_out_rms_mm'].shape == (4, 4)
  assert np.isclose(out['refine_pull'][0], [1000.0, 1.0, 0.001, 0.0]).any()
  np.testing.assert_allclose(out['refine_pulls'][0], [1000.0, 1.0, 0.001, 0.0])
  global_fit = methods.fit_method('aim_global', config, model, targets, str(tmp_path))
  assert 'refine_pull' not in global_fit  # AIM-global stays the paper's baseline.


@pytest.mark.parametrize('key,value,message', [
    ('regions', -1, 'refine.regions must be >= 0'),
    ('pulls', '1,0', 'refine.pulls must be finite and > 0'),
    ('pulls', 'a', 'refine.pulls must be comma-separated numbers'),
    ('held_out', 1.0, r'refine.held_out must be in \(0, 1\)'),
    ('choice_frames', 0, 'refine.choice_frames must be >= 1'),
    ('train.marker_steps', -5, 'train.marker_steps must be >= 0'),
    ('train.landmark_steps', -1, 'train.landmark_steps must be >= 0'),
    ('train.marker_learning_rate', -1.0, 'train.marker_learning_rate must be >= 0'),
])
def test_bad_fast_fitting_settings_are_refused_in_one_line(key, value, message):
  config = _config()
  group, name = key.split('.') if '.' in key else ('refine', key)
  config[group][name] = value
  with pytest.raises(ValueError, match=message) as info:
    fit_run.check_config(config)
  assert '\n' not in str(info.value)


def test_a_fit_run_with_the_refinement_writes_its_choice(tmp_path):
  """`fit_sequence.py`'s run (`runs.fit.run_fit`) with the refinement on: the fit is written,
  with the chosen pull (finite numbers only: the batch candidate is stored as 0)."""
  model = make_model_workdir(str(tmp_path / 'model'))
  config = _config()
  config.methods = 'aim'
  config.output.render = config.output.meshes = False
  fit_run.run_fit(config, model, 'synthetic', str(tmp_path / 'fit'), log=None)
  with np.load(tmp_path / 'fit' / 'aim' / 'chunk_000' / 'result.npz') as result:
    assert np.isfinite(result['refine_held_out_rms_mm']).all()
    assert result['refine_pull'][0] in result['refine_pulls'][0]
