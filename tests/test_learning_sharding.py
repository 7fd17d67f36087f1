"""Learning data-parallel over query points: 4 simulated CPU devices reach the parameters of 1."""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sharded_learning_equals_single_device():
  script = textwrap.dedent("""
      import sys
      import jax
      import numpy as np
      sys.path.insert(0, %r)
      from aim_jax import learning
      from aim_jax.anatomy import constraints as constraints_lib
      from aim_jax.data import synthetic
      from configs import learn_test
      assert jax.device_count() == 4, jax.devices()
      actor = synthetic.make_synthetic_actor(resolution=16)
      constraints = constraints_lib.compute_constraints(actor, source_fraction=0.1)
      out = {}
      for shard in (False, True):
        config = learn_test.get_config()
        config.train.num_steps = 10
        config.train.batch_size = 150  # Not a multiple of 4: an uneven split.
        config.train.shard_points = shard
        spec = learning.model_spec(config, actor)
        assert learning.StepSettings.from_config(config, spec).shard_points == shard
        params, _, _ = learning.train(config, actor, constraints, None, log=None)
        out[shard] = params
      leaf = jax.tree_util.tree_leaves(out[True])[0]
      assert len(leaf.sharding.device_set) == 4, leaf.sharding  # Replicated on every device.
      pairs = zip(jax.tree_util.tree_leaves(out[False]), jax.tree_util.tree_leaves(out[True]))
      diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs)
      print('max parameter difference', diff)
      for a, b in zip(jax.tree_util.tree_leaves(out[False]), jax.tree_util.tree_leaves(out[True])):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-4, rtol=1e-3)
      moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(
          jax.tree_util.tree_leaves(out[False]), jax.tree_util.tree_leaves(
              learning.create_state(config, spec, learning.make_optimizer(config)).params)))
      assert moved > 1e-3, moved  # The runs learned something.
  """ % REPO)
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  run = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 0, run.stdout + run.stderr
  print(run.stdout)
