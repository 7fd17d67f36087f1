"""Held-out markers and landmarks: folds, what a fit may see, scores and the choice of scale."""

import jax
import numpy as np
import pytest

from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import cross_validation as cv
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import mesh_topology, methods, synthetic_targets
from configs import fit_test


def test_folds_are_balanced_seeded_and_cover_every_point():
  ids = cv.fold_ids(23, 4, seed=5)
  assert sorted(np.bincount(ids).tolist()) == [5, 6, 6, 6]
  np.testing.assert_array_equal(ids, cv.fold_ids(23, 4, seed=5))
  assert not np.array_equal(ids, cv.fold_ids(23, 4, seed=6))
  with pytest.raises(ValueError, match='at least 2 folds'):
    cv.fold_ids(10, 1, 0)
  with pytest.raises(ValueError, match='cannot split 3 points'):
    cv.fold_ids(3, 4, 0)


def _markers(actor, frames=3, count=20, noise=0.0, seed=0):
  return synthetic_targets.markers(actor.neutral, actor.faces, actor.region,
                                   actor.shapes[:frames], count=count, noise_mm=noise, seed=seed)


def test_held_out_markers_are_never_used_in_the_fit(actor, oracle):
  """Garbage at the hidden markers changes nothing of the fit: same parameters, bit for bit."""
  config = fit_test.get_config()
  config.train.num_steps = 15
  config.loss.coefficient_smooth = 1.0
  config.loss.coefficient_shrink = 0.1
  target = _markers(actor)
  hidden = cv.fold_ids(target.points.count, 4, seed=0) == 2
  garbage = target.replace(values=target.values.at[:, hidden].set(1e4))
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  source = {'basis': oracle,
            'topology': mesh_topology.make_topology(actor.faces, actor.num_vertices)}
  fits = [fit_lib.fit_frames(config, spec, source, {'markers': cv.hold_out(t, hidden)},
                             log=None)[0] for t in (target, garbage)]
  flat = [np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(f)]) for f in fits]
  np.testing.assert_array_equal(flat[0], flat[1])
  model = basis_lib.FitModel(params={}, spec=None, info={}, actor=actor, basis=oracle,
                             gbs_basis=oracle)
  gbs = [methods.fit_method('gbs', config, model, {'markers': cv.hold_out(t, hidden)}, '',
                            log=None)['weights'] for t in (target, garbage)]
  np.testing.assert_array_equal(gbs[0], gbs[1])


def test_cross_validate_hides_each_fold_once_and_scores_the_hidden_points(actor):
  target = _markers(actor, frames=2, count=12, noise=0.5, seed=1)
  truth = np.asarray(actor.shapes[:2])
  seen = []

  def perfect_fit(train, fold):
    visible = np.asarray(train['markers'].visible)
    seen.append((fold, visible[0] == 0))
    return truth

  result = cv.cross_validate(perfect_fit, {'markers': target}, folds=3, seed=4,
                             noise={'markers': 0.5})
  hidden = np.stack([h for _, h in seen])
  assert [f for f, _ in seen] == [0, 1, 2]
  np.testing.assert_array_equal(hidden.sum(axis=0), 1)  # Every marker hidden exactly once.
  np.testing.assert_array_equal(hidden, np.stack([cv.fold_ids(12, 3, 4) == k for k in range(3)]))
  # The true frames miss the noisy markers by the noise alone: rms ~ sqrt(3) * 0.5 mm, which the
  # stated noise takes out.
  markers = result['markers']
  assert markers['count'] == 24
  assert markers['rms'] == pytest.approx(np.sqrt(3) * 0.5, rel=0.35)
  assert markers['denoised_rms'] < 0.5 * markers['rms']
  exact = cv.cross_validate(perfect_fit, {'markers': _markers(actor, 2, 12)}, 3, 4, {})
  assert exact['markers']['rms'] == pytest.approx(0.0, abs=1e-4)


def test_landmarks_are_scored_in_pixels(actor):
  camera = synthetic_targets.frontal_camera(actor.neutral)
  target = synthetic_targets.landmarks(actor.neutral, actor.faces, actor.region,
                                       actor.shapes[:2], camera, count=30, noise_px=0.0)
  shifted = np.asarray(actor.shapes[:2]).copy()
  shifted[..., 0] += 1.0  # 1 mm sideways, ~600 mm from the camera.
  result = cv.cross_validate(lambda train, fold: shifted, {'landmarks': target}, 3, 0, {})
  px_per_mm = float(camera.intrinsics[0, 0]) / 600.0
  assert result['landmarks']['mean'] == pytest.approx(px_per_mm, rel=0.15)


def test_selection_is_the_first_lowest_finite_score():
  assert cv.select_by_held_out([0.3, 0.2, 0.2, 0.5], [0, 1, 2, 3]) == 1
  assert cv.select_by_held_out([np.nan, 0.4, 0.3], [0, 1, 2]) == 2
  with pytest.raises(ValueError, match='no regularisation scale'):
    cv.select_by_held_out([np.nan], [1])
  with pytest.raises(ValueError, match='one held-out score'):
    cv.select_by_held_out([0.1], [1, 2])


def test_chosen_regularisation_is_deterministic_for_a_seed(tmp_path, actor, oracle):
  config = fit_test.get_config()
  config.train.num_steps = 20
  config.loss.coefficient_shrink = 1.0
  config.cv.folds = 2
  config.cv.seed = 3
  config.cv.scales = '0,1,10'
  config.noise.markers_mm = 0.3
  model = basis_lib.FitModel(params={}, spec=None, info={}, actor=actor, basis=oracle,
                             gbs_basis=oracle,
                             topology=mesh_topology.make_topology(actor.faces,
                                                                  actor.num_vertices))
  targets = {'markers': _markers(actor, frames=3, count=16, noise=0.3)}
  runs = [methods.fit_with_held_out('aim', config, model, targets, str(tmp_path / str(i)),
                                    log=None)[1] for i in range(2)]
  assert runs[0]['chosen_scale'] == runs[1]['chosen_scale']
  assert runs[0]['scales'] == [0.0, 1.0, 10.0]
  for a, b in zip(runs[0]['per_scale'], runs[1]['per_scale']):
    assert a['score'] == pytest.approx(b['score'], rel=1e-6)
  scores = [p['score'] for p in runs[0]['per_scale']]
  assert runs[0]['chosen_scale'] == [0.0, 1.0, 10.0][int(np.argmin(scores))]


def test_held_out_scales_of_a_landmark_fit_multiply_its_own_field_weights(actor):
  config = fit_test.get_config()
  camera = synthetic_targets.frontal_camera(actor.neutral)
  landmarks = {'landmarks': synthetic_targets.landmarks(
      actor.neutral, actor.faces, actor.region, actor.shapes[:2], camera, count=20)}
  base = methods.config_for_targets(config, landmarks)
  for scale in (0.0, 0.3, 3.0):
    scaled = methods.config_for_targets(methods.scaled_config(config, 'aim', scale), landmarks)
    for name in ('coefficient_smooth', 'coefficient_shrink'):
      assert scaled.loss[name] == pytest.approx(scale * base.loss[name])
    assert scaled.model.w0 == base.model.w0 == config.model.w0


def test_scaled_config_multiplies_the_methods_regularisation():
  config = fit_test.get_config()
  config.loss.coefficient_smooth = 2.0
  config.loss.coefficient_shrink = 0.5
  scaled = methods.scaled_config(config, 'aim', 3.0)
  assert (scaled.loss.coefficient_smooth, scaled.loss.coefficient_shrink) == (6.0, 1.5)
  assert config.loss.coefficient_smooth == 2.0  # The original is left alone.
  assert methods.scaled_config(config, 'gbs', 10.0).gbs.ridge == pytest.approx(
      10 * config.gbs.ridge)
  assert methods.parse_scales('') == [1.0]
  with pytest.raises(ValueError, match='cv.scales'):
    methods.parse_scales('1,x')
