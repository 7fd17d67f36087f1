"""The fitting loop: resume, signals, chunks and sharding over devices."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import assert_trees_close

from aim_jax import train_loop
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from configs import fit_test

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



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
  assert_trees_close(full, resumed, atol=1e-5)


def test_sigterm_checkpoints_the_exact_step_then_resumes(tmp_path, actor, oracle):
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
  assert_trees_close(full, resumed, atol=1e-5)


def test_chunked_sequence_is_resumable(tmp_path, actor, oracle):
  config = fit_test.get_config()
  config.train.chunk_frames = 3
  frames = actor.shapes[:7]
  targets = {'dense': targets_lib.dense_targets(frames)}
  spec = fit_lib.fit_spec(config, oracle.num_coefficients)
  chunks = fit_lib.fit_sequence_chunks(config, spec, oracle, targets, str(tmp_path), log=None)
  assert chunks.ranges == ((0, 3), (3, 6), (6, 7))  # Held as files, not in memory.
  assert chunks.files() == [str(tmp_path / f'chunk_{i:03d}' / 'result.npz') for i in range(3)]
  first = chunks.load()
  assert first['frames'].shape == (7, actor.num_vertices, 3)
  assert first['coefficients'].shape[:2] == (7, actor.num_vertices)
  assert sorted(os.listdir(tmp_path)) == ['chunk_000', 'chunk_001', 'chunk_002']
  kept = os.stat(tmp_path / 'chunk_001' / 'result.npz').st_mtime_ns
  os.remove(tmp_path / 'chunk_002' / 'result.npz')  # As if killed before the last chunk ended.
  again = fit_lib.fit_sequence(config, spec, oracle, targets, str(tmp_path), log=None)
  assert os.stat(tmp_path / 'chunk_001' / 'result.npz').st_mtime_ns == kept  # Not refitted.
  np.testing.assert_allclose(again['frames'], first['frames'], atol=1e-4)


def test_sharded_fit_equals_single_device():
  script = textwrap.dedent("""
      import sys
      import jax
      import numpy as np
      sys.path.insert(0, %r)
      from aim_jax.data import synthetic
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
