"""Tiny model workdirs for end-to-end tests of what reads a model workdir (edit, retarget).

`make_model_workdir(workdir, seed)` writes a real model workdir (model.json, constraints.npz,
an orbax checkpoint) for the resolution-24 synthetic actor of `seed` with configs/learn_test.py,
holding the initial parameters (plus a little random noise on the jaw transforms, so they are not
the identity): it tests the plumbing in a second, not the learning
(tests/end_to_end/test_learn_command.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from aim_jax import learning, model_dir, train_loop
from aim_jax.data import synthetic
from aim_jax.runs import learn as learn_run
from configs import learn_test


def make_model_workdir(workdir: str, seed: int = 0) -> str:
  config = learn_test.get_config()
  config.actor.seed = seed
  actor = synthetic.make_synthetic_actor(config.actor.resolution, seed)
  constraints = learn_run.constraints_for(actor, config, workdir, None)
  spec = learning.model_spec(config, actor)
  model_dir.save_model(workdir, spec, config, actor, constraints)
  state = learning.create_state(config, spec, learning.make_optimizer(config))
  jaw = state.params['jaw']
  key = jax.random.PRNGKey(seed)
  noisy = {'rot6d': jaw['rot6d'] + 0.05 * jax.random.normal(key, jaw['rot6d'].shape),
           'translation': jaw['translation'] + jax.random.normal(key, jaw['translation'].shape)}
  params = dict(state.params)
  params['jaw'] = {k: jnp.asarray(v, jnp.float32) for k, v in noisy.items()}
  state = state.replace(params=params)
  with train_loop.Checkpoints(workdir, log=None) as checkpoints:
    checkpoints.save(1, state, force=True)
  return workdir
