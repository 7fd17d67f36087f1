r"""Random subsets drawn inside the steps: `jax.random.choice(replace=False)` against top-k.

Every fitting step draws `train.points_per_step` of the constrained points (and the
coefficient-field terms draw `loss.field_points` template vertices); every learning step draws
the regulariser points. `aim_jax/sampling.py` draws them as the `count` largest of `total`
uniforms (`lax.top_k`); `jax.random.choice` without replacement shuffles the whole range. Both
are uniformly random subsets of distinct indices (`tests/test_sampling.py`).

Measured in one run, alternating rounds: the draw alone at a few sizes, and the whole compiled
step with each sampler (each compiled ahead of time, so the two never share a compilation): the
dense fitting step (100 frames of the demo model's held-out performance, `configs/fit.py` as
`methods.config_for_targets` sets it for dense targets), the 150-marker fitting step, and the
learning step (`benchmarks/learn_step.py`'s configuration, blocks of steps in one `lax.scan`).

  python benchmarks/sampling.py --model_dir=workdirs/demo

Writes benchmarks/results/sampling.json and prints a markdown table.
"""

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from steppers import fit_state, learn_step_config

from aim_jax import learning, model_dir, sampling
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data import synthetic
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import methods
from configs import fit as fit_config

_MODEL_DIR = flags.DEFINE_string('model_dir', 'workdirs/demo', 'A learn_model.py workdir '
                                 '(learned on the synthetic actor).')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Alternating measurement rounds.')
_FIT_STEPS = flags.DEFINE_integer('fit_steps', 100, 'Fitting steps per round.')
_LEARN_BLOCK = flags.DEFINE_integer('learn_block', 10, 'Learning steps per call and round.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/sampling.json', 'Result file.')


def shuffle_subset(key, total, count):
  """The sampler before `aim_jax/sampling.py`: a subset from a shuffle of the whole range."""
  if not count or count >= total:
    return jnp.arange(total, dtype=jnp.int32)
  return jax.random.choice(key, total, (count,), replace=False).astype(jnp.int32)


SAMPLERS = {'choice (shuffle)': shuffle_subset, 'top_k': sampling.random_subset}


def _draw_ms(sampler, total, count, repeats=200):
  draw = jax.jit(lambda key: sampler(key, total, count))
  key = jax.random.PRNGKey(0)
  draw(key).block_until_ready()
  start = time.perf_counter()
  for i in range(repeats):
    out = draw(jax.random.fold_in(key, i))
  out.block_until_ready()
  return (time.perf_counter() - start) / repeats * 1e3


def _with_sampler(sampler, build):
  """Builds (and compiles) a stepper with `sampling.random_subset` replaced by `sampler`."""
  original = sampling.random_subset
  sampling.random_subset = sampler
  jax.clear_caches()  # A fresh trace, so the step is compiled with this sampler.
  try:
    return build()
  finally:
    sampling.random_subset = original
    jax.clear_caches()


def fit_builder(model, kind, steps):
  config = fit_config.get_config()
  config.synthetic.kind = kind
  targets, _ = methods.synthetic_sequence_targets(config, model.actor)
  config = methods.config_for_targets(config, targets)
  spec = fit_lib.fit_spec(config, model.basis.num_coefficients)
  source = fit_lib.fit_source(model.basis, model.topology, model.jaw, config, targets)
  settings = dict(spec=spec, options=fit_lib.loss_options(config),
                  optim=fit_lib.OptimizerSettings.from_config(config))
  valid = jnp.ones(targets[kind].num_frames, jnp.float32)
  key = jax.random.PRNGKey(1)

  def build():
    state = [fit_state(config, spec, targets[kind].num_frames)]
    compiled = fit_lib.fit_step.lower(state[0], source, targets, valid, key,
                                      **settings).compile()

    def run():
      for _ in range(steps):
        state[0], terms = compiled(state[0], source, targets, valid, key)
      jax.block_until_ready(terms)
    run()
    return run, steps
  return build


def learn_builder(block):
  actor = synthetic.make_synthetic_actor(resolution=64)
  constraints = constraints_lib.compute_constraints(actor, source_fraction=0.1)
  config = learn_step_config(128, 3)
  spec = learning.model_spec(config, actor)
  settings = learning.StepSettings.from_config(config, spec)
  data = learning.make_learning_data(actor, constraints)

  def build():
    state = [learning.create_state(config, spec, settings.optimizer.optimizer())]
    compiled = learning.train_block.lower(state[0], data, settings, block).compile()

    def run():
      state[0], terms = compiled(state[0], data)
      jax.block_until_ready(terms)
    run()
    return run, block
  return build


def main(argv):
  del argv
  model = model_dir.load_fit_model(_MODEL_DIR.value)
  results = {'machine': {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
                         'jax': jax.__version__, 'device': str(jax.devices()[0])},
             'date': time.strftime('%Y-%m-%d'), 'draw_ms': {}, 'step_ms': {}}
  for total in (4238, 6706, 16666):
    results['draw_ms'][f'1024 of {total}'] = {name: _draw_ms(s, total, 1024)
                                              for name, s in SAMPLERS.items()}
  print('draw alone (ms):', json.dumps(results['draw_ms']), flush=True)
  builders = {'fitting, dense (100 frames, 1,024 points)': fit_builder(model, 'dense',
                                                                       _FIT_STEPS.value),
              'fitting, 150 markers (100 frames)': fit_builder(model, 'markers',
                                                               _FIT_STEPS.value),
              'learning (4,238 vertices, hidden 128)': learn_builder(_LEARN_BLOCK.value)}
  runs = {}
  for step_name, build in builders.items():
    for sampler_name, sampler in SAMPLERS.items():
      runs[(step_name, sampler_name)] = _with_sampler(sampler, build)
  times = {key: [] for key in runs}
  for _ in range(_ROUNDS.value):
    for key, (run, steps) in runs.items():
      start = time.perf_counter()
      run()
      times[key].append((time.perf_counter() - start) / steps * 1e3)
  print('| step | choice (shuffle), ms | top_k, ms | ratio |')
  print('|---|---|---|---|')
  for step_name in builders:
    before = float(np.median(times[(step_name, 'choice (shuffle)')]))
    after = float(np.median(times[(step_name, 'top_k')]))
    results['step_ms'][step_name] = {'choice (shuffle)': before, 'top_k': after,
                                     'speed-up': before / after,
                                     'rounds': {k[1]: v for k, v in times.items()
                                                if k[0] == step_name}}
    print(f'| {step_name} | {before:.1f} | {after:.1f} | {before / after:.2f}x |')
  os.makedirs(os.path.dirname(_OUT.value), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  app.run(main)
