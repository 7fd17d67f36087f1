r"""Fitting speed on the synthetic actor's held-out 100-frame sequence.

Measures, in one run on one machine (`--sections` picks the parts):
1. convergence: for dense targets and for 150 noise-free markers (`--kinds`), each fitted as
   `fit_sequence.py` fits it (`methods.config_for_targets`: dense at the dense learning rate,
   markers at `model.sparse_w0` with the coefficient-field and jaw terms), the time per frame to
   reach an error within 10 % of a long converged fit of the same settings (compile time
   reported separately; evaluation time excluded), and the step time of the same run.
2. reference: the paper's 'per_point' F_W on the dense targets, with the error each variant
   reaches (the accuracy comparison of the two).
3. steps: step time of the cached path (AIM fields evaluated once per actor) against the
   uncached path (the five AIM SIRENs re-run at the sampled points every step), alternating.
4. scaling: the step time against the number of frames and of vertices.
5. fast: `configs/fit_fast.py` (dense: a short batch fit, then every frame refined in closed
   form, `fitting/refinement.py`; markers: fewer steps at a higher learning rate) on the dense
   targets and on 150 markers, noise-free and with `--noise_mm` / `--marker_noise_mm` of
   Gaussian noise, against `configs/fit.py` on the same targets: error and wall time per frame,
   every compilation included (the first fit in a fresh process; later ones reuse what they
   share).

  python benchmarks/fit_sequence.py --model_dir=workdirs/demo

Writes benchmarks/results/fit_sequence.json (the sections run, merged into the file's earlier
sections) and prints markdown tables.
"""

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from steppers import fit_state, fit_stepper, gemm_rate, step_ms

from aim_jax import eval as eval_lib
from aim_jax import model_dir
from aim_jax.data import synthetic, synthetic_performance
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import methods, refinement
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from configs import fit as fit_config
from configs import fit_fast as fit_fast_config

_MODEL_DIR = flags.DEFINE_string('model_dir', 'workdirs/demo', 'A learn_model.py workdir '
                                 '(learned on the synthetic actor).')
_SECTIONS = flags.DEFINE_list('sections', ['convergence', 'reference', 'steps', 'scaling'],
                              'Parts to run (see the module docstring).')
_KINDS = flags.DEFINE_list('kinds', ['dense', 'markers'], 'Target kinds of the convergence '
                           'section (synthetic targets, `configs/fit.py` synthetic.*).')
_LONG_STEPS = flags.DEFINE_integer('long_steps', 8000, 'Steps of the converged reference fit.')
_STEPS = flags.DEFINE_integer('steps', 0, "Steps of the default-length fit (0: configs/fit.py's "
                              'train.num_steps).')
_REFERENCE_STEPS = flags.DEFINE_integer('reference_steps', 600,
                                        "Steps of the paper's per_point F_W (slow on CPU).")
_EVAL_EVERY = flags.DEFINE_integer('eval_every', 250, 'Steps between error evaluations.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating rounds for step timings.')
_NOISE_MM = flags.DEFINE_float('noise_mm', 0.2, 'Gaussian noise per axis (mm) of the fast '
                                'section\'s noisy dense targets.')
_MARKER_NOISE_MM = flags.DEFINE_float('marker_noise_mm', 0.3, 'Gaussian noise per axis (mm) of '
                                       'the fast section\'s noisy markers.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/fit_sequence.json', 'Result file.')


def fitting_problem(model, kind, config=None, noise_mm=0.0):
  """(config, targets, source, truth frames) of AIM on the held-out sequence, as
  `fit_sequence.py --targets=synthetic --config.synthetic.kind=<kind>` sets them up (with
  `noise_mm` of Gaussian noise per axis on the targets, seeded)."""
  config = config or fit_config.get_config()
  config.synthetic.kind = kind
  if _STEPS.value:
    config.train.num_steps = _STEPS.value
  targets, truth = methods.synthetic_sequence_targets(config, model.actor)
  if noise_mm:
    t = targets[kind]
    noise = np.random.default_rng(5).normal(0.0, noise_mm, t.values.shape)
    targets = {kind: t.replace(values=jnp.asarray(np.asarray(t.values) + noise, jnp.float32))}
  config = methods.config_for_targets(config, targets)
  source = fit_lib.fit_source(model.basis, model.topology, model.jaw, config, targets)
  return config, targets, source, np.asarray(truth['frames'])


def convergence(config, basis, source, targets, truth, variant, num_steps, eval_every):
  """Fits with periodic evaluation; returns the curve [(step, fit seconds, error mm)] and the
  compile time. Fit seconds exclude compilation and the evaluations."""
  config = config.copy_and_resolve_references()
  config.train.num_steps = num_steps
  spec = fit_lib.fit_spec(config, basis.num_coefficients, variant)
  settings = dict(spec=spec, options=fit_lib.loss_options(config),
                  optim=fit_lib.OptimizerSettings.from_config(config))
  state = fit_state(config, spec, truth.shape[0])
  key = jax.random.PRNGKey(config.seed + 1)
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


def fit_wall(model, config, targets, source, truth):
  """(error mm, wall seconds per frame) of `methods`' AIM fit of a chunk as `fit_sequence.py`
  runs it (the batch fit, then `refinement.refine_frames` when the config asks for it), every
  compilation included; plus the refinement's chosen pull (None without)."""
  spec = fit_lib.fit_spec(config, model.basis.num_coefficients)
  start = time.perf_counter()
  params, _ = fit_lib.fit_frames(config, spec, source, targets, log=None)
  if refinement.applies(config, spec, targets):
    out = refinement.refine_frames(config, spec, model.basis, params, targets, log=print)
  else:
    out = fit_lib.evaluate_frames(params, spec, model.basis)
  seconds = time.perf_counter() - start
  pull = float(out['refine_pull'][0]) if 'refine_pull' in out else None
  return (float(eval_lib.vertex_errors(out['frames'], truth).mean()), seconds / truth.shape[0],
          pull)


def fast_fitting(model):
  """`configs/fit_fast.py` against `configs/fit.py`: dense targets and 150 markers, noise-free
  and noisy."""
  out = {}
  for kind, noise_mm in (('dense', _NOISE_MM.value), ('markers', _MARKER_NOISE_MM.value)):
    out[kind] = {'noise_mm': noise_mm}
    for name, noise in (('clean', 0.0), ('noisy', noise_mm)):
      row = {}
      for preset, get_config in (('fast', fit_fast_config.get_config),
                                 ('default', fit_config.get_config)):
        config, targets, source, truth = fitting_problem(model, kind, get_config(), noise)
        error, per_frame, pull = fit_wall(model, config, targets, source, truth)
        row[preset] = {'error_mm': error, 'seconds_per_frame': per_frame, 'pull': pull,
                       'steps': int(config.train.num_steps),
                       'learning_rate': float(config.train.learning_rate),
                       'regions': int(config.refine.regions)}
        print(f'  {kind} {name} {preset}: {error:.4f} mm, {per_frame:.3f} s/frame', flush=True)
      out[kind][name] = row
  return out


def time_to_reach(curve, threshold):
  for step, seconds, error in curve:
    if error <= threshold:
      return step, seconds
  return None, None


def kind_convergence(config, basis, source, targets, truth, long_steps, eval_every):
  """The long converged fit and the default-length fit of one kind of targets, and the time
  per frame each takes to come within 10 % of the long fit's final error."""
  num_frames = truth.shape[0]
  long_curve, _ = convergence(config, basis, source, targets, truth, config.model.variant,
                              long_steps, eval_every)
  converged = long_curve[-1][2]
  curve, compile_s = convergence(config, basis, source, targets, truth, config.model.variant,
                                 config.train.num_steps, eval_every)
  threshold = 1.1 * converged
  per_frame = lambda seconds: None if seconds is None else seconds / num_frames
  reach_step, reach_s = time_to_reach(curve, threshold)
  long_reach_step, long_reach_s = time_to_reach(long_curve, threshold)
  return {'learning_rate': float(config.train.learning_rate), 'w0': float(config.model.w0),
          'converged_error_mm': converged, 'converged_steps': long_steps,
          'threshold_mm': threshold, 'long_curve': long_curve,
          'long_run_steps_to_threshold': long_reach_step,
          'long_run_seconds_per_frame_to_threshold': per_frame(long_reach_s),
          'step_ms': 1e3 * long_curve[-1][1] / long_steps,
          'default': {'steps': int(config.train.num_steps), 'curve': curve,
                      'compile_s': compile_s, 'steps_to_threshold': reach_step,
                      'seconds_per_frame_to_threshold': per_frame(reach_s),
                      'seconds_per_frame': per_frame(curve[-1][1]),
                      'final_error_mm': curve[-1][2]}}


def main(argv):
  del argv
  sections = set(_SECTIONS.value)
  model = model_dir.load_fit_model(_MODEL_DIR.value)
  actor = model.actor
  results = {}
  if os.path.exists(_OUT.value):  # The sections not run keep their earlier results.
    with open(_OUT.value) as f:
      results = json.load(f)
  results.update({'machine': {'platform': platform.platform(),
                              'processor': platform.processor(),
                              'cpu_count': os.cpu_count(), 'jax': jax.__version__,
                              'device': str(jax.devices()[0]),
                              'gemm_gflops': gemm_rate() / 1e9},
                  'date': time.strftime('%Y-%m-%d'), 'sections': sorted(sections),
                  'section_dates': {**results.get('section_dates', {}),
                                    **{name: time.strftime('%Y-%m-%d') for name in sections}},
                  'num_frames': 100, 'num_vertices': actor.num_vertices})

  if 'convergence' in sections:
    print('1. convergence (100 frames)')
    results.setdefault('convergence', {})
    for kind in _KINDS.value:
      config, targets, source, truth = fitting_problem(model, kind)
      results['convergence'][kind] = kind_convergence(config, model.basis, source, targets,
                                                      truth, _LONG_STEPS.value,
                                                      _EVAL_EVERY.value)
      gbs = methods.fit_method('gbs', config, model, targets, '/tmp', log=None)['frames']
      results['convergence'][kind]['gbs_error_mm'] = float(
          eval_lib.vertex_errors(gbs, truth).mean())

  if 'fast' in sections:
    print('5. configs/fit_fast.py against configs/fit.py (dense targets)')
    results['fast'] = fast_fitting(model)

  if not sections & {'reference', 'steps', 'scaling'}:
    return write_results(results)
  config, targets, _, truth = fitting_problem(model, 'dense')
  if 'reference' in sections:
    print('2. the paper\'s per_point F_W (dense targets)')
    curve, _ = convergence(config, model.basis, {'basis': model.basis}, targets, truth,
                           config.model.variant, config.train.num_steps, _EVAL_EVERY.value)
    ref_curve, ref_compile_s = convergence(config, model.basis, {'basis': model.basis},
                                           targets, truth, 'per_point',
                                           _REFERENCE_STEPS.value, _EVAL_EVERY.value)
    # The separable variant's error after the same fit time as the per_point run took.
    same_time = [e for _, s, e in curve if s <= ref_curve[-1][1]]
    results['per_point'] = {'curve': ref_curve, 'compile_s': ref_compile_s,
                            'final_error_mm': ref_curve[-1][2], 'fit_s': ref_curve[-1][1],
                            'default_curve': curve,
                            'default_error_at_same_time_mm': same_time[-1] if same_time
                            else None}

  spec = fit_lib.fit_spec(config, model.basis.num_coefficients)
  if 'steps' in sections:
    print('3. cached vs uncached step (dense targets)')
    ref_spec = fit_lib.fit_spec(config, model.basis.num_coefficients, 'per_point')
    results['step_ms'] = step_ms({
        'cached': fit_stepper(config, spec, model.basis, targets, 100),
        'uncached': fit_stepper(config, spec, model.basis, targets, 100, model.spec,
                                model.params),
        'cached_per_point': fit_stepper(config, ref_spec, model.basis, targets, 100),
    }, _ROUNDS.value)
    print(' ', results['step_ms'])

  if 'scaling' in sections:
    print('4. scaling (ground-truth basis; step cost of the default variant)')
    results['scaling'] = scaling(config, spec, actor)
    print(' ', results['scaling'])
  write_results(results)


def write_results(results):
  os.makedirs(os.path.dirname(_OUT.value), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)
  print_tables(results)


def scaling(config, spec, actor):
  """Step time against the number of frames and of vertices (dense targets)."""
  out = {'frames': {}, 'vertices': {}}
  oracle = basis_lib.basis_from_ground_truth(
      actor, aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes))
  for frames in (25, 50, 100, 200):
    many = synthetic_performance.make_performance(actor, num_frames=frames,
                                                  seed=config.synthetic.seed)
    t = {'dense': targets_lib.dense_targets(many.frames)}
    out['frames'][frames] = step_ms({'s': fit_stepper(config, spec, oracle, t, frames)},
                                    _ROUNDS.value)['s']
  for resolution in (48, 64, 96, 128):
    other = synthetic.make_synthetic_actor(resolution=resolution)
    many = synthetic_performance.make_performance(other, num_frames=100,
                                                  seed=config.synthetic.seed)
    b = basis_lib.basis_from_ground_truth(
        other, aim.make_spec(other.neutral, other.pivot, other.num_shapes))
    t = {'dense': targets_lib.dense_targets(many.frames)}
    ms = step_ms({'s': fit_stepper(config, spec, b, t, 100)}, _ROUNDS.value)['s']
    params = fit_lib.init_params(config, spec, 100)
    fit_lib.evaluate_frames(params, spec, b)
    start = time.perf_counter()
    fit_lib.evaluate_frames(params, spec, b)
    out['vertices'][other.num_vertices] = {'step_ms': ms, 'evaluate_all_frames_s':
                                           time.perf_counter() - start}
  return out


def print_tables(results):
  print(f'machine: {results["machine"]}')
  print('| targets | lr / w0 | converged (mm, steps) | default steps: error (mm), s/frame | '
        'within 10 %: steps, s/frame (default run; long run) | step (ms) |')
  print('|---|---|---|---|---|---|')
  for kind, c in results.get('convergence', {}).items():
    d = c['default']
    print(f'| {kind} | {c["learning_rate"]:g} / {c["w0"]:g} | {c["converged_error_mm"]:.4f} '
          f'({c["converged_steps"]}) | {d["steps"]}: {d["final_error_mm"]:.4f}, '
          f'{d["seconds_per_frame"]:.2f} | {d["steps_to_threshold"]}, '
          f'{d["seconds_per_frame_to_threshold"]}; {c["long_run_steps_to_threshold"]}, '
          f'{c["long_run_seconds_per_frame_to_threshold"]} | {c["step_ms"]:.1f} |')
  if 'per_point' in results:
    p = results['per_point']
    print(f'per_point F_W: {p["final_error_mm"]:.4f} mm after {p["fit_s"]:.0f} s; the default '
          f'variant at the same time: {p["default_error_at_same_time_mm"]}')
  if 'step_ms' in results:
    print(f'step ms: {results["step_ms"]}')
  if 'fast' in results:
    print('| targets | fit_fast.py: mm, s/frame (pull) | fit.py: mm, s/frame |')
    print('|---|---|---|')
    for kind, f in results['fast'].items():
      for name in ('clean', 'noisy'):
        a, b = f[name]['fast'], f[name]['default']
        label = 'noise-free' if name == 'clean' else f'{f["noise_mm"]:g} mm noise'
        pull = '' if a['pull'] is None else f' ({a["pull"]:g})'
        print(f'| {kind}, {label} | {a["error_mm"]:.4f}, {a["seconds_per_frame"]:.3f}{pull} | '
              f'{b["error_mm"]:.4f}, {b["seconds_per_frame"]:.3f} |')


if __name__ == '__main__':
  app.run(main)
