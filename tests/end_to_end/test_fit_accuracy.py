"""End to end: fits of the synthetic actor recover its shapes and jaws and beat GBS."""

from aim_jax import eval as eval_lib
from aim_jax.data import synthetic_performance
from aim_jax.fitting import baselines
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from configs import fit_test


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
