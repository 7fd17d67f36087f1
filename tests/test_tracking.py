"""Live tracking (aim_jax/fitting/tracking.py, aim_jax/runs/track.py): the per-frame solve on
known answers, and a tracked sequence end to end on a small synthetic actor."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.fitting import tracking
from aim_jax.runs import track as track_run
from configs import fit_test, track


def _config():
  config = fit_test.get_config()
  config.tracking = track.get_config().tracking
  config.tracking.calibration_frames = 3
  return config


def _random_networks(spec, basis, seed=0):
  params = fit_lib.init_params(_config(), spec, 1)
  leaves, tree = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  params = jax.tree_util.tree_unflatten(
      tree, [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  return {k: v for k, v in params.items() if k != 'codes'}


@pytest.mark.parametrize('solver,regions', [('lm', 1), ('linear', 3)])
def test_one_frame_solve_recovers_known_unknowns(small_oracle, solver, regions):
  actor, basis = small_oracle
  spec = fit_lib.fit_spec(_config(), basis.num_coefficients)
  tb = tracking.tracking_basis(_random_networks(spec, basis), basis, spec, 64, regions)
  n = spec.transform_outputs
  truth = np.zeros(n + regions * spec.num_coefficients + spec.rank, np.float32)
  truth[:6] = [0.0, 0.08, 0.0, 0.0, 0.0, -0.06]  # A few degrees of jaw rotation.
  truth[6:9] = [0.0, -0.05, 0.02]
  truth[n:n + 3] = [0.5, -0.2, 0.3]
  truth[n + spec.num_coefficients:] = 0.05
  truth = jnp.asarray(truth)
  frame = tracking.frame_points(tb, truth, spec, jnp.arange(basis.num_vertices))
  targets = {'dense': targets_lib.dense_targets(np.asarray(frame)[None])}
  weights = tuple((t, 0.0 if t in ('coefficients', 'temporal') else 1.0) for t in fit_lib.TERMS)
  settings = tracking.SolverSettings(spec=spec, weights=weights, iterations=12)
  start = truth.at[:9].set(0.0).at[n:n + 3].set(0.0)  # Jaw closed, no global blend.
  solve = tracking.solve_frame if solver == 'lm' else tracking.solve_frame_linear
  solved, cost = solve(start, tb, targets, settings)
  again = tracking.frame_points(tb, solved, spec, jnp.arange(basis.num_vertices))
  assert float(jnp.abs(again - frame).max()) < 1e-3
  assert float(cost) < 1e-6


def test_coefficient_gram_is_the_regularisers_mean_square(small_oracle):
  _, basis = small_oracle
  spec = fit_lib.fit_spec(_config(), basis.num_coefficients)
  tb = tracking.tracking_basis(_random_networks(spec, basis), basis, spec, 64, 3)
  c = np.random.default_rng(0).normal(size=3 * spec.num_coefficients + spec.rank)
  u = jnp.concatenate([jnp.zeros(spec.transform_outputs), jnp.asarray(c, jnp.float32)])
  mean_square = float(jnp.mean(tracking.coefficients_at(tb, u, spec) ** 2))
  assert float(c @ np.asarray(tracking._coefficient_gram(tb)) @ c) == pytest.approx(
      mean_square, rel=1e-4)


def _moved_jaw_frame(basis):
  """(spec, tracking basis with 2 regions, unknowns with the jaw moved and a few coefficients
  set, the frame (V, 3) mm they give) of random calibrated networks."""
  spec = fit_lib.fit_spec(_config(), basis.num_coefficients)
  tb = tracking.tracking_basis(_random_networks(spec, basis), basis, spec, 64, 2)
  n = spec.transform_outputs
  truth = np.zeros(n + 2 * spec.num_coefficients + spec.rank, np.float32)
  truth[:9] = [0.0, 0.1, 0.0, 0.0, 0.0, -0.08, 0.0, -0.05, 0.02]
  truth[n:n + 4] = [0.5, -0.2, 0.3, 0.1]
  frame = tracking.frame_points(tb, jnp.asarray(truth), spec, jnp.arange(basis.num_vertices))
  return spec, tb, truth, np.asarray(frame)


def test_projected_solve_minimises_the_regularised_objective(small_oracle):
  """With the magnitude and temporal terms on, noisy targets and the jaw moved, the closed-form
  variable projection reaches at least the objective that Levenberg-Marquardt on every unknown
  reaches, and a different previous frame changes the answer (the temporal term acts)."""
  spec, tb, truth, frame = _moved_jaw_frame(small_oracle[1])
  n = spec.transform_outputs
  frame = frame + np.random.default_rng(1).normal(0.0, 0.05, frame.shape).astype(np.float32)
  targets = {'dense': targets_lib.dense_targets(frame[None])}
  weights = tuple((t, {'coefficients': 1e-2, 'temporal': 1e-2}.get(t, 1.0))
                  for t in fit_lib.TERMS)
  start = jnp.zeros_like(jnp.asarray(truth))
  lm = tracking.SolverSettings(spec=spec, weights=weights, iterations=30, damping=1e-6)
  _, lm_cost = tracking.solve_frame(start, tb, targets, lm)
  solved, cost = tracking.solve_frame_linear(start, tb, targets, lm)
  assert float(cost) <= float(lm_cost) * 1.001
  moved, _ = tracking.solve_frame_linear(start.at[n:].set(0.3), tb, targets, lm)
  assert float(jnp.abs(moved - solved).max()) > 1e-3


def test_robust_linear_solve_is_the_m_estimate(small_oracle):
  """With 5 % of the points 8 mm off, the closed-form solve with a Huber penalty (least squares
  on pseudo-observations, one factorisation) lands where Levenberg-Marquardt with IRLS weights
  on every unknown lands, and the outliers move it far less than without the penalty."""
  spec, tb, truth, frame = _moved_jaw_frame(small_oracle[1])
  ids = jnp.arange(small_oracle[1].num_vertices)
  rng = np.random.default_rng(3)
  observed = frame + rng.normal(0.0, 0.05, frame.shape)
  outliers = rng.choice(len(frame), len(frame) // 20, replace=False)
  direction = rng.normal(size=(len(outliers), 3))
  observed[outliers] += 8.0 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
  targets = {'dense': targets_lib.dense_targets(observed[None].astype(np.float32))}
  weights = tuple((t, {'coefficients': 1e-3, 'temporal': 1e-3}.get(t, 1.0))
                  for t in fit_lib.TERMS)
  start = jnp.zeros_like(jnp.asarray(truth))
  inliers = np.setdiff1d(np.arange(len(frame)), outliers)

  def error(u):
    return float(np.abs(np.asarray(tracking.frame_points(tb, u, spec, ids)) - frame)[
        inliers].mean())

  plain = tracking.SolverSettings(spec=spec, weights=weights, iterations=30, damping=1e-6)
  robust = dataclasses.replace(plain, robust='huber', robust_scale=0.2, robust_iterations=30)
  closed_form, _ = tracking.solve_frame_linear(start, tb, targets, robust)
  lm, _ = tracking.solve_frame(start, tb, targets, robust)
  squares, _ = tracking.solve_frame_linear(start, tb, targets, plain)
  assert error(closed_form) < 0.3 * error(squares)
  assert abs(error(closed_form) - error(lm)) < 0.1 * error(lm)
  gap = tracking.frame_points(tb, closed_form, spec, ids) - tracking.frame_points(tb, lm, spec, ids)
  assert float(jnp.abs(gap).mean()) < 0.2 * error(squares)


@pytest.mark.parametrize('head_pose', [False, True])
def test_structured_normal_equations_are_the_residuals_gauss_newton(small_oracle, head_pose):
  """`solve_frame`'s Gauss-Newton system (built from the design and per-point offset
  Jacobians) equals J'J and J'r of the frame's residual vector differentiated by every unknown,
  for landmarks on barycentric points and markers together, with robust weights, both
  regularisers and (optionally) a head pose."""
  actor, basis = small_oracle
  config = _config()
  config.model.head_pose = head_pose
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  tb = tracking.tracking_basis(_random_networks(spec, basis), basis, spec, 64, 3)
  rng = np.random.default_rng(2)
  n = spec.transform_outputs
  u = jnp.asarray(rng.normal(0.0, 0.05, n + 3 * spec.num_coefficients + spec.rank), jnp.float32)
  previous = u + 0.02
  faces = rng.integers(0, len(actor.faces), 40)
  points = targets_lib.at_barycentric(actor.faces, faces, rng.uniform(0.1, 1.0, (40, 3)))
  camera = camera_lib.look_at((0.0, 0.0, 600.0), (0.0, 0.0, 0.0))
  x = np.asarray(tracking.frame_points(tb, u, spec, jnp.arange(basis.num_vertices)))
  pixels = np.asarray(camera_lib.project(camera, jnp.asarray(x[actor.faces[faces]].mean(1))))
  markers = targets_lib.make_target_set(
      'markers', targets_lib.at_vertices(np.arange(0, actor.num_vertices, 7)),
      x[None, ::7] + rng.normal(0.0, 0.3, (1, len(x[::7]), 3)))
  targets = {'landmarks': targets_lib.make_target_set(
      'landmarks', points, pixels[None] + rng.normal(0.0, 2.0, (1, 40, 2)), camera=camera),
      'markers': markers}
  weights = tuple((t, {'coefficients': 1e-2, 'temporal': 3e-2}.get(t, 1.0))
                  for t in fit_lib.TERMS)
  settings = tracking.SolverSettings(spec=spec, weights=weights, robust='huber',
                                     robust_scale=0.5)
  robust_w = tracking._robust_weights(u, tb, targets, settings)
  normal, gradient = tracking._normal_equations(
      u, tb, targets, previous, settings, robust_w, tracking.frame_designs(tb, targets),
      tracking._coefficient_gram(tb))
  residual = lambda z: tracking._residuals(z, tb, targets, previous, settings, robust_w)
  jacobian = jax.jacfwd(residual)(u)
  scale = float(jnp.abs(jacobian.T @ jacobian).max())
  np.testing.assert_allclose(normal, jacobian.T @ jacobian, atol=2e-4 * scale)
  np.testing.assert_allclose(gradient, jacobian.T @ residual(u),
                             atol=2e-4 * float(jnp.abs(jacobian.T @ residual(u)).max()))


def test_tracking_settings_take_their_own_coefficient_weight_and_region_count(small_oracle):
  _, basis = small_oracle
  config = _config()
  config.loss.coefficients = 1e-4
  config.tracking.coefficients = 0.25
  config.tracking.dense_regions, config.tracking.regions = 9, 4
  config.tracking.landmark_regions = 2
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  weights = dict(tracking.solver_settings(config, spec).weights)
  assert weights['coefficients'] == 0.25 and weights['temporal'] == config.loss.temporal
  assert tracking.region_count(config, {'dense': None, 'markers': None}) == 9
  assert tracking.region_count(config, {'markers': None}) == 4
  assert tracking.region_count(config, {'landmarks': None}) == 2
  assert tracking.region_count(config, {'landmarks': None, 'markers': None}) == 4


def test_regions_are_a_smooth_partition_of_unity(small_oracle):
  actor, _ = small_oracle
  weights = tracking.region_weights(actor.neutral, 6)
  assert weights.shape == (actor.num_vertices, 6)
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
  assert (weights.argmax(axis=0).size == 6) and len(set(weights.argmax(axis=1))) == 6
  np.testing.assert_array_equal(tracking.region_weights(actor.neutral, 1), 1.0)


def test_robust_weights_are_the_penalties_derivatives():
  squared = jnp.asarray([0.25, 1.0, 9.0])
  np.testing.assert_allclose(tracking._robust_weight(squared, 'none', 1.0), 1.0)
  np.testing.assert_allclose(tracking._robust_weight(squared, 'huber', 1.0), [1.0, 1.0, 1 / 3],
                             rtol=1e-5)
  np.testing.assert_allclose(tracking._robust_weight(squared, 'cauchy', 1.0),
                             1.0 / (1.0 + np.asarray(squared)), rtol=1e-6)


def test_only_the_separable_field_can_be_tracked(small_oracle):
  _, basis = small_oracle
  config = _config()
  config.model.variant = 'per_point'
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  with pytest.raises(ValueError, match='separable'):
    tracking.tracking_basis({}, basis, spec)


def test_a_tracked_sequence_and_its_report(small_oracle):
  actor, basis = small_oracle
  config = _config()
  frames = np.asarray(actor.shapes[:7])
  targets = {'dense': targets_lib.dense_targets(frames)}
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  result = tracking.track_sequence(config, spec, basis, targets, log=None)
  assert result['frames'].shape == frames.shape
  assert np.all(np.isfinite(result['frames']))
  assert np.isnan(result['latency_ms'][:3]).all() and (result['latency_ms'][3:] > 0).all()
  truth = {'frames': frames}
  report = track_run.track_report(result, truth, actor.region, actor.pivot,
                                  batch_frames=frames + 0.01)
  assert report['calibration_frames'] == 3 and report['num_frames'] == 7
  assert report['batch_fit_error_mm']['tracked'] == pytest.approx(0.01 * np.sqrt(3), rel=1e-4)
  json.dumps(report)
  # The tracked frames follow the targets far better than the neutral does.
  neutral_error = np.linalg.norm(frames[3:] - frames[0], axis=-1).mean()
  assert report['error_mm']['tracked'] < 0.5 * neutral_error


def test_calibration_must_leave_frames_to_track(small_oracle):
  actor, basis = small_oracle
  config = _config()
  config.tracking.calibration_frames = 7
  targets = {'dense': targets_lib.dense_targets(np.asarray(actor.shapes[:7]))}
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  with pytest.raises(ValueError, match='calibration_frames'):
    tracking.track_sequence(config, spec, basis, targets, log=None)


def test_track_command_writes_npz_and_report(tmp_path):
  from tiny_models import make_model_workdir
  model_dir = make_model_workdir(str(tmp_path / 'model'))
  config = _config()
  workdir = str(tmp_path / 'track')
  report = track_run.run_track(config, model_dir, 'synthetic', workdir, log=None)
  with np.load(os.path.join(workdir, 'track.npz')) as data:
    assert data['frames'].shape[0] == config.synthetic.num_frames
    frames = data['frames']
  assert json.load(open(os.path.join(workdir, 'report.json')))['latency_ms'] == report[
      'latency_ms']
  assert os.listdir(os.path.join(workdir, track_run.CALIBRATION, 'checkpoints'))
  lines = []
  track_run.run_track(config, model_dir, 'synthetic', workdir, log=lines.append)
  assert any(line.startswith('resumed from checkpoint at step') for line in lines), lines
  with np.load(os.path.join(workdir, 'track.npz')) as again:
    np.testing.assert_allclose(again['frames'][:3], frames[:3], atol=1e-5)
  wrong = str(tmp_path / 'wrong.npz')
  np.savez(wrong, frames=np.zeros((2, 5, 3)))
  for batch_fit, problem in ((wrong, 'frames have shape'), (wrong + '.missing', 'not a readable')):
    with pytest.raises(ValueError, match=problem):
      track_run.run_track(config, model_dir, 'synthetic', str(tmp_path / 'other'),
                          batch_fit=batch_fit, log=None)
  assert not os.path.exists(tmp_path / 'other' / 'track.npz')


@pytest.mark.parametrize('key,value,problem', [
    ('dense_regions', 0, 'tracking.dense_regions must be >= 1'),
    ('landmark_regions', -2, 'tracking.landmark_regions must be >= 1'),
    ('points', -1, 'tracking.points must be >= 0'),
    ('coefficients', -0.1, 'tracking.coefficients must be >= 0'),
    ('coefficients', float('nan'), 'tracking.coefficients must be >= 0'),
    ('damping', 0.0, 'tracking.damping must be > 0'),
    ('robust_iterations', 0, 'tracking.robust_iterations must be >= 1')])
def test_bad_tracking_settings_are_refused_before_anything_is_written(tmp_path, key, value,
                                                                       problem):
  config = _config()
  config.tracking[key] = value
  workdir = str(tmp_path / 'track')
  with pytest.raises(ValueError, match=problem):
    track_run.run_track(config, str(tmp_path / 'no_model'), 'synthetic', workdir, log=None)
  assert not os.path.exists(workdir)


def test_non_finite_tracked_frames_are_not_written(tmp_path, monkeypatch):
  from tiny_models import make_model_workdir

  from aim_jax import train_loop
  model_dir = make_model_workdir(str(tmp_path / 'model'))
  real = tracking.track_sequence

  def broken(*args, **kwargs):
    result = real(*args, **kwargs)
    result['frames'][-1, 0, 0] = np.nan
    return result
  monkeypatch.setattr(tracking, 'track_sequence', broken)
  workdir = str(tmp_path / 'track')
  with pytest.raises(train_loop.Diverged, match='non-finite'):
    track_run.run_track(_config(), model_dir, 'synthetic', workdir, log=None)
  assert not os.path.exists(os.path.join(workdir, 'track.npz'))


def test_one_frame_of_delay_averages_each_frame_with_its_neighbours():
  before = np.zeros(2)
  unknowns = np.array([[4.0, 1.0], [0.0, 2.0], [8.0, 3.0], [0.0, 4.0]])
  assert tracking.smooth_unknowns(unknowns, before, 0) is unknowns
  shown = tracking.smooth_unknowns(unknowns, before, 1)
  # (1, 2, 1) / 4 with the frame before the first; the last frame (no successor yet) as solved.
  np.testing.assert_allclose(shown[:, 0], [2.0, 3.0, 4.0, 0.0])
  # A steady motion is shown where it is: the centred average of a straight line is the line.
  np.testing.assert_allclose(shown[:, 1], [1.0, 2.0, 3.0, 4.0])
  # A lone tracked frame has no successor: shown as solved.
  np.testing.assert_allclose(tracking.smooth_unknowns(unknowns[:1], before, 1), unknowns[:1])


def test_delay_frames_is_checked():
  config = _config()
  config.tracking.delay_frames = 2
  with pytest.raises(ValueError, match='delay_frames must be 0 or 1'):
    tracking.check_settings(config)
