"""The learning and fitting steps the benchmarks time, built once and shared (no flags here).

`learn_step.py`, `fit_sequence.py` and `scaling.py` import these from beside them (benchmarks/
is on sys.path when one of them runs as a script). A stepper is `run(n)`: n steps on a state it
keeps, blocking until the last step's terms are computed.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from aim_jax import learning
from aim_jax.fitting import fit as fit_lib
from configs import learn as learn_config


def learn_step_config(hidden, depth, layout='loop', sine='poly'):
  """configs/learn.py (every default term) at the benchmark's size, full batch."""
  config = learn_config.get_config()
  config.model.hidden, config.model.depth = hidden, depth
  config.model.layout, config.model.sine = layout, sine
  config.train.batch_size = 0
  config.train.constraint_batch = 0
  config.train.symmetry_batch = 1024
  return config


def learn_stepper(config, actor, constraints, block=1):
  """(run(n), warm-up seconds): n steps of our jitted step, `block` steps per dispatch
  (`learning.train_block`, a lax.scan, as `train.steps_per_call` does in learning)."""
  spec = learning.model_spec(config, actor)
  settings = learning.StepSettings.from_config(config, spec)
  data = learning.make_learning_data(actor, constraints)
  state = [learning.create_state(config, spec, settings.optimizer.optimizer())]

  def run(n):
    if block > 1:
      if n % block:
        raise ValueError(f'steps per round ({n}) must be a multiple of the block ({block})')
      for _ in range(n // block):
        state[0], terms = learning.train_block(state[0], data, settings, block)
    else:
      for _ in range(n):
        state[0], terms = learning.train_step(state[0], data, settings)
    jax.block_until_ready(terms)
  start = time.perf_counter()
  run(block)  # Compiles.
  return run, time.perf_counter() - start


def fit_state(config, spec, num_frames):
  """A fresh fitting state (step 0, initial parameters, Adam's state) for `num_frames`."""
  optimizer = fit_lib.make_optimizer(config)
  params = fit_lib.init_params(config, spec, num_frames)
  return fit_lib.FitState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=optimizer.init(params))


def fit_stepper(config, spec, basis, targets, num_frames, aim_spec=None, aim_params=None):
  """run(n): n jitted fitting steps (`fit_lib.fit_step`, one per dispatch as configs/fit.py's
  `train.steps_per_call` = 1) of all `num_frames` frames jointly; the cached path, or the
  uncached one (AIM's networks re-run every step) when `aim_spec` is given."""
  step = fit_lib.make_step(spec, fit_lib.loss_options(config),
                           fit_lib.OptimizerSettings.from_config(config),
                           aim_spec)
  state = [fit_state(config, spec, num_frames)]
  source = {'basis': basis}
  if aim_spec is not None:
    source['aim'] = aim_params
  key = jax.random.PRNGKey(0)
  valid = jnp.ones(num_frames, jnp.float32)

  def run(n):
    for _ in range(n):
      state[0], terms = step(state[0], source, targets, valid, key)
    jax.block_until_ready(terms)
  return run


def step_ms(step_fns, rounds, steps=20):
  """Alternating rounds: {name: median ms per step}."""
  times = {name: [] for name in step_fns}
  for run in step_fns.values():
    run(2)  # Compile and warm up.
  for _ in range(rounds):
    for name, run in step_fns.items():
      start = time.perf_counter()
      run(steps)
      times[name].append(1e3 * (time.perf_counter() - start) / steps)
  return {name: float(np.median(t)) for name, t in times.items()}


def gemm_rate(n=1024, repeats=20):
  """float32 FLOP/s of an n^3 matmul on the default device (the machine's GEMM rate)."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a)
  out.block_until_ready()
  return 2 * n ** 3 * repeats / (time.perf_counter() - start)
