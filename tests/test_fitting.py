"""Fitting (aim_jax/fitting): model, camera, losses, baselines, sequence fitting, sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax import eval as eval_lib
from aim_jax import geometry
from aim_jax.data import synthetic
from aim_jax.data import synthetic_performance
from aim_jax.fitting import baselines
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import model as model_lib
from aim_jax.fitting import objectives
from aim_jax.fitting import synthetic_targets
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from aim_jax import train_loop
from configs import fit_test

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def actor():
  return synthetic.make_synthetic_actor(resolution=24)


@pytest.fixture(scope='module')
def oracle(actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  return basis_lib.basis_from_ground_truth(actor, spec)


def test_ground_truth_basis_reproduces_learning_shapes(actor, oracle):
  gt = actor.ground_truth
  w = np.eye(actor.num_shapes - 1, dtype=np.float32)
  w = np.concatenate([np.zeros((1, w.shape[1]), np.float32), w])  # Neutral, then one-hot.
  frame = {'jaw_rotation': jnp.asarray(gt.jaw_rotation, jnp.float32),
           'jaw_translation': jnp.asarray(gt.jaw_translation, jnp.float32)}
  w_points = jnp.broadcast_to(jnp.asarray(w)[:, None], (w.shape[0], actor.num_vertices,
                                                        w.shape[1]))
  x = model_lib.compose(oracle, w_points, frame)
  np.testing.assert_allclose(np.asarray(x), actor.shapes, atol=1e-3)


@pytest.mark.parametrize('variant', model_lib.VARIANTS)
def test_every_frame_starts_at_the_neutral(oracle, variant):
  spec = model_lib.FitSpec(num_coefficients=oracle.num_coefficients, code_dim=8, hidden=16,
                           depth=2, rank=4, variant=variant, head_pose=True)
  params = model_lib.init(jax.random.PRNGKey(0), spec, num_frames=5)
  x, w, frame = model_lib.estimate(params, oracle, spec)
  assert x.shape == (5, oracle.num_vertices, 3)
  assert w.shape == (5, oracle.num_vertices, oracle.num_coefficients)
  np.testing.assert_allclose(np.asarray(x), np.broadcast_to(oracle.neutral, x.shape), atol=1e-5)
  np.testing.assert_allclose(np.asarray(frame['jaw_rotation']), np.tile(np.eye(3), (5, 1, 1)),
                             atol=1e-6)


def test_per_point_split_first_layer_equals_concatenated_input(oracle):
  spec = model_lib.FitSpec(num_coefficients=oracle.num_coefficients, code_dim=8, hidden=16,
                           depth=2)
  params = model_lib.init(jax.random.PRNGKey(1), spec, num_frames=3)
  params['coefficients'][-1]['w'] = jax.random.normal(jax.random.PRNGKey(2),
                                                      params['coefficients'][-1]['w'].shape)
  coords = oracle.coords[:50]
  w = model_lib.coefficients(params, coords, spec)
  from aim_jax.models import siren
  inputs = jnp.concatenate([jnp.broadcast_to(params['codes'][:, None], (3, 50, 8)),
                            jnp.broadcast_to(coords[None], (3, 50, 3))], axis=-1)
  reference = siren.apply(params['coefficients'], inputs, spec.coefficient_mlp())
  np.testing.assert_allclose(np.asarray(w), np.asarray(reference), atol=1e-4)


def test_projection_known_answer_and_gradient():
  cam = camera_lib.look_at(eye=(0.0, 0.0, 500.0), target=(0.0, 0.0, 0.0), focal_px=1000.0,
                           image_size=(640, 480))
  # The target projects to the principal point; +x (subject's left) to the image right, +y up.
  uv = np.asarray(camera_lib.project(cam, jnp.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0],
                                                     [0.0, 50.0, 0.0]])))
  np.testing.assert_allclose(uv[0], [320.0, 240.0], atol=1e-3)
  np.testing.assert_allclose(uv[1], [420.0, 240.0], atol=1e-3)
  np.testing.assert_allclose(uv[2], [320.0, 140.0], atol=1e-3)
  point = jnp.array([12.0, -7.0, 30.0])
  jac = np.asarray(jax.jacfwd(lambda p: camera_lib.project(cam, p))(point))
  eps = 1e-2
  for i in range(3):
    step = np.zeros(3, np.float32)
    step[i] = eps
    numeric = (np.asarray(camera_lib.project(cam, point + step))
               - np.asarray(camera_lib.project(cam, point - step))) / (2 * eps)
    np.testing.assert_allclose(jac[:, i], numeric, rtol=2e-2, atol=1e-3)


def test_camera_offset_identity_and_bad_rotation():
  cam = camera_lib.look_at(eye=(0.0, 0.0, 500.0), target=(0.0, 0.0, 0.0))
  same = camera_lib.apply_offset(cam, jnp.asarray(geometry.IDENTITY_6D), jnp.zeros(3))
  np.testing.assert_allclose(np.asarray(same.rotation), np.asarray(cam.rotation), atol=1e-6)
  with pytest.raises(ValueError, match='rotation'):
    camera_lib.make_camera(np.eye(3), 2 * np.eye(3), np.zeros(3))


def test_robust_penalties():
  r2 = jnp.array([0.25, 4.0, 100.0])
  np.testing.assert_allclose(objectives.robust_penalty(r2, 'none', 1.0), r2)
  huber = np.asarray(objectives.robust_penalty(r2, 'huber', 1.0))
  np.testing.assert_allclose(huber, [0.25, 3.0, 19.0], rtol=1e-5)
  cauchy = np.asarray(objectives.robust_penalty(r2, 'cauchy', 1.0))
  assert cauchy[0] == pytest.approx(np.log1p(0.25)) and cauchy[2] < 5.0


def test_landmark_term_is_in_mm_at_the_points_depth():
  cam = camera_lib.look_at(eye=(0.0, 0.0, 500.0), target=(0.0, 0.0, 0.0), focal_px=1000.0)
  points = targets_lib.at_vertices([0])
  truth = jnp.zeros((1, 1, 3))
  pixels = camera_lib.project(cam, truth)
  targets = targets_lib.make_target_set('landmarks', points, np.asarray(pixels), camera=cam)
  moved = truth + jnp.array([1.0, 0.0, 0.0])  # 1 mm sideways at 500 mm: 2 px.
  value = objectives.data_term(moved, targets, targets.visible, targets.values)
  assert float(value) == pytest.approx(1.0, rel=1e-3)


def test_gbs_recovers_a_linear_combination_from_dense_and_markers(actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  rng = np.random.default_rng(0)
  weights = rng.uniform(0.0, 0.8, (4, actor.num_shapes - 1)).astype(np.float32)
  frames = baselines.gbs_frames(gbs, weights)
  dense = {'dense': targets_lib.dense_targets(frames)}
  # The jaw-open shapes are nearly collinear, so compare shapes rather than weights.
  fitted = baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, dense, ridge=1e-8))
  assert eval_lib.vertex_errors(fitted, frames).mean() < 0.01
  markers = {'markers': synthetic_targets.markers(actor.neutral, actor.faces, actor.region,
                                                  frames, count=120)}
  fitted = baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, markers, ridge=1e-8))
  assert eval_lib.vertex_errors(fitted, frames).mean() < 0.02


def test_gbs_gauss_newton_through_the_camera(actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  weights = np.full((2, actor.num_shapes - 1), 0.3, np.float32)
  frames = baselines.gbs_frames(gbs, weights)
  cam = synthetic_targets.frontal_camera(actor.neutral)
  targets = {'landmarks': synthetic_targets.landmarks(actor.neutral, actor.faces, actor.region,
                                                      frames, cam, count=300, noise_px=0.0)}
  fitted = baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, targets, ridge=1e-8))
  assert eval_lib.vertex_errors(fitted, frames).mean() < 0.05


def _fit(config, basis, targets, variant=None, **kwargs):
  spec = fit_lib.fit_spec(config, basis.num_coefficients, variant)
  params, history = fit_lib.fit_frames(config, spec, {'basis': basis}, targets, log=None,
                                       **kwargs)
  return fit_lib.evaluate_frames(params, spec, basis), history


def test_learning_shapes_and_their_jaws_are_recovered(actor, oracle):
  config = fit_test.get_config()
  config.model.hidden = 32
  config.model.code_dim = 16
  config.train.num_steps = 400
  config.train.learning_rate = 1e-2
  config.train.points_per_step = 0
  config.loss.temporal = 0.0
  chosen = [0, 3, 5, 8]  # neutral, jaw open 25 deg, jaw sideways, an expression.
  frames = actor.shapes[chosen]
  result, history = _fit(config, oracle, {'dense': targets_lib.dense_targets(frames)})
  assert history[-1]['dense'] < 0.05 * history[0]['dense']
  error = eval_lib.vertex_errors(result['frames'], frames)
  assert error.mean() < 0.15, error.mean(axis=1)
  jaw = eval_lib.jaw_errors(result['jaw_rotation'], result['jaw_translation'],
                            actor.ground_truth.jaw_rotation[chosen],
                            actor.ground_truth.jaw_translation[chosen], actor.pivot)
  assert jaw['rotation_deg']['mean'] < 2.0, jaw


def test_performance_fit_beats_gbs_and_recovers_the_jaw(actor, oracle):
  performance = synthetic_performance.make_performance(actor, num_frames=8, seed=3)
  config = fit_test.get_config()
  config.model.hidden = 32
  config.model.code_dim = 16
  config.model.variant = 'separable'
  config.train.num_steps = 400
  config.train.learning_rate = 1e-2
  targets = {'dense': targets_lib.dense_targets(performance.frames)}
  result, _ = _fit(config, oracle, targets)
  aim_error = eval_lib.vertex_errors(result['frames'], performance.frames).mean()
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  gbs_error = eval_lib.vertex_errors(
      baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, targets)), performance.frames).mean()
  assert aim_error < 0.5 * gbs_error, (aim_error, gbs_error)
  jaw = eval_lib.jaw_errors(result['jaw_rotation'], result['jaw_translation'],
                            performance.jaw_rotation, performance.jaw_translation, actor.pivot)
  assert jaw['rotation_deg']['mean'] < 3.0, jaw


def test_fit_resume_matches_uninterrupted(tmp_path, actor, oracle):
  config = fit_test.get_config()
  frames = actor.shapes[:4]
  targets = {'dense': targets_lib.dense_targets(frames)}
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  full, _ = fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, log=None)
  workdir = str(tmp_path / 'fit')
  fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, workdir=workdir, log=None,
                     stop_after=20)
  resumed, _ = fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, workdir=workdir,
                                  log=None)
  for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_sigterm_checkpoints_the_exact_step_then_resumes(tmp_path, actor, oracle):
  import signal
  from aim_jax import learning
  config = fit_test.get_config()
  config.train.log_every = 7  # Not a multiple of checkpoint_every (20).
  targets = {'dense': targets_lib.dense_targets(actor.shapes[:4])}
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  full, _ = fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, log=None)
  workdir = str(tmp_path / 'fit')

  def kill_at_14(step, params):
    del params
    if step == 14:
      os.kill(os.getpid(), signal.SIGTERM)

  with pytest.raises(train_loop.StopRequested, match='stopped at step 14'):
    fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, workdir=workdir, log=None,
                       callback=kill_at_14)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['14']
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # The handler is put back.
  resumed, _ = fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, workdir=workdir,
                                  log=None)
  for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_chunked_sequence_is_resumable(tmp_path, actor, oracle):
  config = fit_test.get_config()
  config.train.chunk_frames = 3
  frames = actor.shapes[:7]
  targets = {'dense': targets_lib.dense_targets(frames)}
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  first = fit_lib.fit_sequence(config, spec, oracle, targets, str(tmp_path), log=None)
  assert first['frames'].shape == (7, actor.num_vertices, 3)
  assert sorted(os.listdir(tmp_path)) == ['chunk_000', 'chunk_001', 'chunk_002']
  os.remove(tmp_path / 'chunk_002' / 'result.npz')  # As if killed before the last chunk ended.
  again = fit_lib.fit_sequence(config, spec, oracle, targets, str(tmp_path), log=None)
  np.testing.assert_allclose(again['frames'], first['frames'], atol=1e-4)


def test_sharded_fit_equals_single_device():
  script = textwrap.dedent("""
      import sys
      import jax
      import numpy as np
      sys.path.insert(0, %r)
      from aim_jax.data import synthetic
from aim_jax.data import synthetic_performance
      from aim_jax.fitting import basis as basis_lib, fit as fit_lib, targets as targets_lib
      from aim_jax.models import aim
      from configs import fit_test
      assert jax.device_count() == 4, jax.devices()
      actor = synthetic.make_synthetic_actor(resolution=24)
      oracle = basis_lib.basis_from_ground_truth(
          actor, aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes))
      targets = {'dense': targets_lib.dense_targets(actor.shapes[:6])}
      out = {}
      for shard in (False, True):
        config = fit_test.get_config()
        config.train.shard_frames = shard
        spec = fit_lib.fit_spec(config, oracle.num_coefficients)
        params, _ = fit_lib.fit_frames(config, spec, {'basis': oracle}, targets, log=None)
        out[shard] = fit_lib.evaluate_frames(params, spec, oracle)['frames']
      print('max difference', float(np.abs(out[True] - out[False]).max()))
      np.testing.assert_allclose(out[True], out[False], atol=1e-3)
  """ % REPO)
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  run = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 0, run.stdout + run.stderr
