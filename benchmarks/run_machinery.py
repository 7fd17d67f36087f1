r"""What the shared run machinery and the compile boundaries cost, side by side in one run.

1. `aim.evaluate_chunked` on a learned model: the module-level jitted block (compiled once per
   spec) against a jit of a closure made per call (what the code did before: one compilation
   per call), alternating rounds.
2. Steps per host dispatch (`train.steps_per_call`, a jitted `lax.scan` over blocks of steps)
   for the learning step (demo config) and the fitting step (100 dense frames), alternating.
3. Optional (`--before_repo`): the whole 3-method synthetic fit (`fit_sequence.py`, short) with
   this checkout and with another checkout of the project (e.g. the commit before the change),
   run as alternating subprocesses on the same model.

  python benchmarks/run_machinery.py --model_dir=workdirs/demo [--before_repo=../old]

Writes benchmarks/results/run_machinery.json and prints markdown tables.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
from absl import app, flags, logging

from aim_jax import learning, train_loop
from aim_jax import model_dir as model_dir_lib
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data import synthetic
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import methods as methods_lib
from aim_jax.models import aim
from configs import fit as fit_config
from configs import learn_demo

_MODEL_DIR = flags.DEFINE_string('model_dir', 'workdirs/demo', 'A learn_model.py workdir '
                                 '(learned on the synthetic actor).')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating rounds.')
_STEPS = flags.DEFINE_integer('steps', 100, 'Steps timed per round and variant.')
_BLOCKS = flags.DEFINE_string('blocks', '1,10,50', 'steps_per_call values compared.')
_BEFORE_REPO = flags.DEFINE_string('before_repo', None, 'Another checkout to time the 3-method '
                                   'fit against (subprocesses).')
_FIT_STEPS = flags.DEFINE_integer('fit_steps', 300, 'Steps per chunk of the 3-method fit.')
_FIT_CHUNK = flags.DEFINE_integer('fit_chunk', 25, 'Frames per chunk of the 3-method fit.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/run_machinery.json', 'Result file.')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _closure_evaluate(params, points, spec):
  """The evaluation as it was before: a jit of a closure created on every call."""
  @jax.jit
  def run(p, pts):
    fields = aim.anatomy(p, pts, spec, aim.NETWORKS)
    rotation, translation = aim.jaw_transforms(p)
    fields['shapes'] = aim.reconstruct_from_fields(fields, rotation, translation, spec)
    return fields
  return jax.device_get(run(params, points))


def evaluation_times(params, spec, points, rounds):
  variants = {'module-level jit (now)': lambda: aim.evaluate_chunked(params, points, spec),
              'closure jit per call (before)': lambda: _closure_evaluate(params, points, spec)}
  times = {name: [] for name in variants}
  for _ in range(rounds):
    for name, fn in variants.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t[1:] if len(t) > 1 else t)) for name, t in times.items()}


def _loop_seconds(state, step_fn, block_fn, steps, block):
  options = train_loop.LoopOptions(num_steps=steps, log_every=steps, checkpoint_every=steps,
                                   steps_per_call=block)
  start = time.perf_counter()
  state, _ = train_loop.run(state, step_fn, options, log=None, block_fn=block_fn)
  jax.block_until_ready(state)
  return time.perf_counter() - start


def block_times(make, blocks, steps, rounds):
  """ms per step for each steps_per_call; `make()` -> (fresh state, step_fn, block_fn(count))."""
  for block in blocks:  # Compile every variant first.
    state, step_fn, block_fn = make()
    _loop_seconds(state, step_fn, block_fn(block), block, block)
  times = {b: [] for b in blocks}
  for _ in range(rounds):
    for block in blocks:
      state, step_fn, block_fn = make()
      times[block].append(_loop_seconds(state, step_fn, block_fn(block), steps, block))
  return {str(b): 1e3 * float(np.median(t)) / steps for b, t in times.items()}


def learning_maker(actor, constraints):
  config = learn_demo.get_config()
  spec = learning.model_spec(config, actor)
  settings = learning.StepSettings.from_config(config, spec)
  data = learning.make_learning_data(actor, constraints)

  def make():
    state = learning.create_state(config, spec, settings.optimizer.optimizer())
    return (state, lambda s: learning.train_step(s, data, settings),
            lambda n: (lambda s: learning.train_block(s, data, settings, n)))
  return make


def fitting_maker(basis, targets):
  config = fit_config.get_config()
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  settings = dict(spec=spec, options=fit_lib.loss_options(config),
                  optim=fit_lib.OptimizerSettings.from_config(config), aim_spec=None)
  num_frames = next(iter(targets.values())).num_frames
  valid = np.ones(num_frames, np.float32)
  key = jax.random.PRNGKey(1)
  source = {'basis': basis}

  def make():
    params = fit_lib.init_params(config, spec, num_frames)
    state = train_loop.create_state(params, settings['optim'].optimizer())
    return (state, lambda s: fit_lib.fit_step(s, source, targets, valid, key, **settings),
            lambda n: (lambda s: fit_lib.fit_block(s, source, targets, valid, key, **settings,
                                                   count=n)))
  return make


def whole_fit_times(model_dir, before_repo, rounds, fit_steps, fit_chunk):
  """Wall seconds of `fit_sequence.py` (3 methods, dense synthetic targets) per checkout."""
  repos = {'now': REPO, 'before': os.path.abspath(before_repo)}
  times = {name: [] for name in repos}
  for _ in range(rounds):
    for name, repo in repos.items():
      with tempfile.TemporaryDirectory() as workdir:
        overrides = [f'--config.{section}.num_steps={fit_steps}' for section in ('train',)]
        overrides += [f'--config.{section}.chunk_frames={fit_chunk}' for section in ('train',)]
        if name == 'before' and not _uses_train_section(repo):
          overrides = [o.replace('.train.', '.optim.') for o in overrides]
        command = [sys.executable, os.path.join(repo, 'experiments', 'fit_sequence.py'),
                   f'--model_dir={os.path.abspath(model_dir)}', '--targets=synthetic',
                   f'--workdir={workdir}', '--config.output.meshes=False',
                   '--config.output.render=False'] + overrides
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=repo,
                       env=dict(os.environ, PYTHONPATH=repo))
        times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def _uses_train_section(repo):
  with open(os.path.join(repo, 'configs', 'fit.py')) as f:
    return 'config.train.num_steps' in f.read()


def main(argv):
  del argv
  model = model_dir_lib.load_model(_MODEL_DIR.value)
  params, spec = model.params, model.spec
  actor = synthetic.make_synthetic_actor(resolution=learn_demo.get_config().actor.resolution)
  results = {'machine': f'{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0]}',
             'date': time.strftime('%Y-%m-%d'), 'model_dir': _MODEL_DIR.value}

  results['evaluate_chunked_s'] = evaluation_times(params, spec, actor.neutral, _ROUNDS.value + 1)
  print('| evaluate_chunked, demo model (4,238 vertices) | seconds per call |\n|---|---|')
  for name, seconds in results['evaluate_chunked_s'].items():
    print(f'| {name} | {seconds:.3f} |')

  blocks = [int(b) for b in _BLOCKS.value.split(',')]
  constraints = constraints_lib.compute_constraints(
      actor, source_fraction=learn_demo.get_config().constraints.source_fraction)
  results['learning_ms_per_step'] = block_times(learning_maker(actor, constraints), blocks,
                                                _STEPS.value, _ROUNDS.value)
  fit_model = model_dir_lib.load_fit_model(_MODEL_DIR.value, actor)
  targets, _ = methods_lib.synthetic_sequence_targets(fit_config.get_config(), actor)
  results['fitting_ms_per_step'] = block_times(fitting_maker(fit_model.basis, targets), blocks,
                                               _STEPS.value, _ROUNDS.value)
  print('\n| steps per call | learning step (ms) | fitting step, 100 frames (ms) |\n|---|---|---|')
  for b in blocks:
    print(f'| {b} | {results["learning_ms_per_step"][str(b)]:.1f} | '
          f'{results["fitting_ms_per_step"][str(b)]:.2f} |')

  if _BEFORE_REPO.value:
    results['three_method_fit_s'] = whole_fit_times(_MODEL_DIR.value, _BEFORE_REPO.value,
                                                    _ROUNDS.value, _FIT_STEPS.value,
                                                    _FIT_CHUNK.value)
    results['three_method_fit'] = {'steps': _FIT_STEPS.value, 'chunk_frames': _FIT_CHUNK.value,
                                   'frames': 100}
    print(f'\n| 3-method fit, 100 frames in chunks of {_FIT_CHUNK.value}, {_FIT_STEPS.value} '
          'steps | seconds |\n|---|---|')
    for name, seconds in results['three_method_fit_s'].items():
      print(f'| {name} | {seconds:.1f} |')
  os.makedirs(os.path.dirname(_OUT.value), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint read at INFO.
  app.run(main)
