r"""Fitting speed on the synthetic actor's held-out 100-frame sequence (dense 3D targets).

Measures, in one run on one machine:
1. Time per frame to reach an error within 10 % of a long converged fit (compile time reported
   separately; evaluation time excluded): the default F_W variant ('separable') and the paper's
   'per_point' F_W, with the error each reaches (the accuracy comparison of the two).
2. Step time of the cached path (AIM fields evaluated once per actor) against the uncached path
   (the five AIM SIRENs re-run at the sampled points every step), alternating rounds.
3. Scaling of the step time with the number of frames and of vertices.

  python benchmarks/fit_sequence.py --model_dir=workdirs/demo

Writes benchmarks/results/fit_sequence.json and prints markdown tables.
"""

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
from absl import app, flags
from steppers import fit_state, fit_stepper, step_ms

from aim_jax import eval as eval_lib
from aim_jax import model_dir
from aim_jax.data import synthetic, synthetic_performance
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import methods
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from configs import fit as fit_config

_MODEL_DIR = flags.DEFINE_string('model_dir', 'workdirs/demo', 'A learn_model.py workdir '
                                 '(learned on the synthetic actor).')
_LONG_STEPS = flags.DEFINE_integer('long_steps', 8000, 'Steps of the converged reference fit.')
_REFERENCE_STEPS = flags.DEFINE_integer('reference_steps', 600,
                                        "Steps of the paper's per_point F_W (slow on CPU).")
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 250, 'Steps between error evaluations.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating rounds for step timings.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/fit_sequence.json', 'Result file.')


def convergence(config, basis, targets, truth, variant, num_steps, eval_every):
  """Fits with periodic evaluation; returns the curve [(step, fit seconds, error mm)] and the
  compile time. Fit seconds exclude compilation and the evaluations."""
  config = config.copy_and_resolve_references()
  config.train.num_steps = num_steps
  spec = fit_lib.fit_spec(config, basis.num_coefficients, variant)
  settings = dict(spec=spec, options=fit_lib.loss_options(config),
                  optim=fit_lib.OptimizerSettings.from_config(config))
  state = fit_state(config, spec, truth.shape[0])
  source, key = {'basis': basis}, jax.random.PRNGKey(config.seed + 1)
  start = time.perf_counter()
  valid = jnp.ones(truth.shape[0], jnp.float32)
  compiled = fit_lib.fit_step.lower(state, source, targets, valid, key, **settings).compile()
  compile_s = time.perf_counter() - start
  curve, fit_s = [], 0.0
  for done in range(0, num_steps, eval_every):
    start = time.perf_counter()
    for _ in range(min(eval_every, num_steps - done)):
      state, terms = compiled(state, source, targets, valid, key)
    jax.block_until_ready(terms)
    fit_s += time.perf_counter() - start
    frames = fit_lib.evaluate_frames(state.params, spec, basis)['frames']
    error = float(eval_lib.vertex_errors(frames, truth).mean())
    curve.append((done + min(eval_every, num_steps - done), fit_s, error))
    print(f'  {variant}: step {curve[-1][0]}  {fit_s:.1f} s  {error:.4f} mm', flush=True)
  return curve, compile_s


def time_to_reach(curve, threshold):
  for step, seconds, error in curve:
    if error <= threshold:
      return step, seconds
  return None, None


def main(argv):
  del argv
  config = fit_config.get_config()
  model = model_dir.load_fit_model(_MODEL_DIR.value)
  actor = model.actor
  performance = synthetic_performance.make_performance(actor, num_frames=100,
                                                       seed=config.synthetic.seed)
  truth = performance.frames
  targets = {'dense': targets_lib.dense_targets(truth)}
  results = {'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                         'cpu_count': os.cpu_count(), 'jax': jax.__version__,
                         'device': str(jax.devices()[0])},
             'num_frames': 100, 'num_vertices': actor.num_vertices,
             'config': config.to_dict()}

  print('1. convergence (dense targets, 100 frames)')
  long_curve, _ = convergence(config, model.basis, targets, truth, config.model.variant,
                              _LONG_STEPS.value, _LONG_STEPS.value // 5)
  converged = long_curve[-1][2]
  curve, compile_s = convergence(config, model.basis, targets, truth, config.model.variant,
                                 config.train.num_steps, _EVAL_EVERY.value)
  reach_step, reach_s = time_to_reach(curve, 1.1 * converged)
  # The long run itself, evaluated every long_steps / 5 steps (an upper bound on the time).
  long_reach_step, long_reach_s = time_to_reach(long_curve, 1.1 * converged)
  ref_curve, ref_compile_s = convergence(config, model.basis, targets, truth, 'per_point',
                                         _REFERENCE_STEPS.value, _EVAL_EVERY.value)
  # The separable variant's error after the same fit time as the per_point run took.
  same_time = [e for _, s, e in curve if s <= ref_curve[-1][1]]
  gbs = methods.fit_method('gbs', config, model, targets, '/tmp', log=None)['frames']
  results['convergence'] = {
      'converged_error_mm': converged, 'converged_steps': _LONG_STEPS.value,
      'long_curve': long_curve,
      'long_run_steps_to_threshold': long_reach_step,
      'long_run_seconds_per_frame_to_threshold': (None if long_reach_s is None
                                                  else long_reach_s / 100),
      'threshold_mm': 1.1 * converged,
      'default': {'variant': config.model.variant, 'curve': curve, 'compile_s': compile_s,
                  'steps_to_threshold': reach_step, 'seconds_to_threshold': reach_s,
                  'seconds_per_frame_to_threshold': None if reach_s is None else reach_s / 100,
                  'final_error_mm': curve[-1][2]},
      'per_point': {'curve': ref_curve, 'compile_s': ref_compile_s,
                    'final_error_mm': ref_curve[-1][2], 'fit_s': ref_curve[-1][1],
                    'default_error_at_same_time_mm': same_time[-1] if same_time else None},
      'gbs_error_mm': float(eval_lib.vertex_errors(gbs, truth).mean()),
  }

  print('2. cached vs uncached step')
  spec = fit_lib.fit_spec(config, model.basis.num_coefficients)
  ref_spec = fit_lib.fit_spec(config, model.basis.num_coefficients, 'per_point')
  results['step_ms'] = step_ms({
      'cached': fit_stepper(config, spec, model.basis, targets, 100),
      'uncached': fit_stepper(config, spec, model.basis, targets, 100, model.spec, model.params),
      'cached_per_point': fit_stepper(config, ref_spec, model.basis, targets, 100),
  }, _ROUNDS.value)
  print(' ', results['step_ms'])

  print('3. scaling (ground-truth basis; step cost of the default variant)')
  scaling = {'frames': {}, 'vertices': {}}
  spec_model = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  oracle = basis_lib.basis_from_ground_truth(actor, spec_model)
  for frames in (25, 50, 100, 200):
    many = synthetic_performance.make_performance(actor, num_frames=frames,
                                                  seed=config.synthetic.seed)
    t = {'dense': targets_lib.dense_targets(many.frames)}
    scaling['frames'][frames] = step_ms({'s': fit_stepper(config, spec, oracle, t, frames)},
                                        _ROUNDS.value)['s']
  for resolution in (48, 64, 96, 128):
    other = synthetic.make_synthetic_actor(resolution=resolution)
    many = synthetic_performance.make_performance(other, num_frames=100, seed=config.synthetic.seed)
    b = basis_lib.basis_from_ground_truth(
        other, aim.make_spec(other.neutral, other.pivot, other.num_shapes))
    t = {'dense': targets_lib.dense_targets(many.frames)}
    run = fit_stepper(config, spec, b, t, 100)
    ms = step_ms({'s': run}, _ROUNDS.value)['s']
    params = fit_lib.init_params(config, spec, 100)
    fit_lib.evaluate_frames(params, spec, b)
    start = time.perf_counter()
    fit_lib.evaluate_frames(params, spec, b)
    scaling['vertices'][other.num_vertices] = {'step_ms': ms,
                                               'evaluate_all_frames_s': time.perf_counter()
                                               - start}
  results['scaling'] = scaling
  print(' ', scaling)

  os.makedirs(os.path.dirname(_OUT.value), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)
  c = results['convergence']
  print(f'\nconverged error ({_LONG_STEPS.value} steps): {converged:.4f} mm; GBS '
        f'{c["gbs_error_mm"]:.4f} mm')
  print('| F_W | compile (s) | steps to <= 1.1x converged | s/frame | final error (mm) |')
  print('|---|---|---|---|---|')
  d = c['default']
  print(f'| {d["variant"]} | {d["compile_s"]:.1f} | {d["steps_to_threshold"]} | '
        f'{d["seconds_per_frame_to_threshold"]} | {d["final_error_mm"]:.4f} |')
  p = c['per_point']
  print(f'| per_point ({_REFERENCE_STEPS.value} steps, {p["fit_s"]:.0f} s) | '
        f'{p["compile_s"]:.1f} | - | - | {p["final_error_mm"]:.4f} |')
  print(f'long run: within 10 % of converged after {c["long_run_steps_to_threshold"]} steps, '
        f'{c["long_run_seconds_per_frame_to_threshold"]} s/frame')
  print(f'step ms: {results["step_ms"]}')


if __name__ == '__main__':
  app.run(main)
