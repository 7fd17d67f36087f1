"""The shared run machinery on a toy quadratic: schedule, resume, blocks, divergence, checkpoint
fallback, signals."""

import functools
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import damage_checkpoint, file_hashes

from aim_jax import metrics_log, train_loop

TARGET = jnp.array([1.0, -2.0, 3.0])
OPTIMIZER = optax.adam(0.1)


def _toy_step(state, blow_up_at=-1):
  def loss(params):
    return jnp.sum((params['w'] - TARGET) ** 2)
  value, grads = jax.value_and_grad(loss)(state.params)
  # From step `blow_up_at` on the gradients are NaN (a diverging run).
  grads = jax.tree_util.tree_map(
      lambda g: jnp.where(state.step >= blow_up_at, jnp.nan, g) if blow_up_at >= 0 else g, grads)
  return train_loop.apply_gradients(state, grads, OPTIMIZER), {'total': value, 'fit': value}


toy_step = jax.jit(_toy_step, static_argnames=('blow_up_at',))


def fresh_state():
  return train_loop.create_state({'w': jnp.zeros(3)}, OPTIMIZER)


def options(**kw):
  base = dict(num_steps=40, log_every=10, checkpoint_every=20, max_checkpoints=3)
  base.update(kw)
  return train_loop.LoopOptions(**base)


def test_warmup_cosine_known_values():
  schedule = train_loop.warmup_cosine(1.0, warmup_steps=10, num_steps=110, final_fraction=0.1)
  assert float(schedule(0)) == 0.0
  assert float(schedule(10)) == pytest.approx(1.0)
  assert float(schedule(60)) == pytest.approx(0.55, abs=1e-6)  # Half-way down the cosine.
  assert float(schedule(110)) == pytest.approx(0.1)


@pytest.mark.parametrize('field,value', [('log_every', 0), ('checkpoint_every', -1),
                                         ('num_steps', 0), ('steps_per_call', 0)])
def test_bad_intervals_are_refused_in_one_line(field, value):
  with pytest.raises(ValueError, match=f'train.{field} must be'):
    options(**{field: value})


def test_run_logs_converges_and_writes_metrics(tmp_path):
  state, history = train_loop.run(fresh_state(), toy_step, options(num_steps=200, log_every=50,
                                                                   checkpoint_every=100),
                                  workdir=str(tmp_path), log=None)
  np.testing.assert_allclose(state.params['w'], TARGET, atol=1e-2)
  assert [r['step'] for r in history] == [50, 100, 150, 200]
  assert [r['step'] for r in metrics_log.read(metrics_log.path_in(str(tmp_path)))] == [
      50, 100, 150, 200]
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['100', '200']


def test_resume_equals_uninterrupted_and_metrics_are_not_repeated(tmp_path):
  straight, _ = train_loop.run(fresh_state(), toy_step, options(), log=None)
  workdir = str(tmp_path)
  train_loop.run(fresh_state(), toy_step, options(), workdir=workdir, log=None, stop_after=20)
  lines = []
  resumed, _ = train_loop.run(fresh_state(), toy_step, options(), workdir=workdir,
                              log=lines.append)
  assert any('resumed from checkpoint at step 20' in line for line in lines)
  np.testing.assert_allclose(resumed.params['w'], straight.params['w'], rtol=1e-6)
  steps = [r['step'] for r in metrics_log.read(metrics_log.path_in(workdir))]
  assert steps == [10, 20, 30, 40]


def test_scan_blocks_give_the_same_run():
  single, history = train_loop.run(fresh_state(), toy_step, options(), log=None)
  blocked, block_history = train_loop.run(fresh_state(), toy_step, options(steps_per_call=5),
                                          log=None)
  np.testing.assert_allclose(blocked.params['w'], single.params['w'], rtol=1e-5)
  assert [r['step'] for r in block_history] == [r['step'] for r in history]
  for a, b in zip(history, block_history):
    assert a['total'] == pytest.approx(b['total'], rel=1e-5)


def test_divergence_stops_and_keeps_the_last_finite_checkpoint(tmp_path):
  workdir = str(tmp_path)
  train_loop.run(fresh_state(), toy_step, options(), workdir=workdir, log=None)
  before = file_hashes(workdir)
  # Resume with more steps; the run goes NaN at step 45, after the last checkpoint (40).
  diverging = functools.partial(toy_step, blow_up_at=45)
  with pytest.raises(train_loop.Diverged, match=r'non-finite fit, total between steps 40 and '
                     r'50.*last finite checkpoint \(step 40\)'):
    train_loop.run(fresh_state(), diverging, options(num_steps=200, checkpoint_every=10),
                   workdir=workdir, log=None)
  assert file_hashes(workdir) == before  # Nothing written, nothing rotated away.


def test_non_finite_state_is_never_checkpointed(tmp_path):
  # NaN parameters (not yet visible in the loss, which is computed before the update) at a
  # checkpoint step: refused.
  diverging = functools.partial(toy_step, blow_up_at=19)
  with pytest.raises(train_loop.Diverged, match='non-finite'):
    train_loop.run(fresh_state(), diverging, options(log_every=20), workdir=str(tmp_path),
                   log=None)
  assert not os.listdir(tmp_path / 'checkpoints')


def test_unreadable_newest_checkpoint_falls_back_to_an_older_one(tmp_path):
  workdir = str(tmp_path)
  train_loop.run(fresh_state(), toy_step, options(checkpoint_every=10), workdir=workdir,
                 log=None, stop_after=30)
  assert damage_checkpoint(tmp_path / 'checkpoints' / '30')
  lines = []
  state, _ = train_loop.run(fresh_state(), toy_step, options(checkpoint_every=10),
                            workdir=workdir, log=lines.append)
  assert any('checkpoint at step 30' in line and 'unreadable' in line for line in lines), lines
  assert any('resumed from checkpoint at step 20' in line for line in lines), lines
  assert (tmp_path / 'checkpoints_unreadable' / '30').exists()
  straight, _ = train_loop.run(fresh_state(), toy_step, options(), log=None)
  np.testing.assert_allclose(state.params['w'], straight.params['w'], rtol=1e-6)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_the_exact_step(tmp_path, signum):
  def send_at_13(step, state, record):
    del state, record
    if step == 13:
      os.kill(os.getpid(), signum)

  # The handlers the process had before (a pytest-xdist worker ignores SIGINT) come back.
  before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
  with pytest.raises(train_loop.StopRequested, match='stopped at step 13'):
    train_loop.run(fresh_state(), toy_step, options(log_every=1), workdir=str(tmp_path),
                   log=None, hooks=train_loop.Hooks(on_log=send_at_13))
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['13']
  assert {s: signal.getsignal(s) for s in before} == before


def test_signal_without_a_workdir_still_stops(tmp_path):
  def send(step, state, record):
    del state, record
    if step == 5:
      os.kill(os.getpid(), signal.SIGTERM)
  with pytest.raises(train_loop.StopRequested, match='stopped at step 5'):
    train_loop.run(fresh_state(), toy_step, options(log_every=1), log=None,
                   hooks=train_loop.Hooks(on_log=send))


def test_clip_spikes_scales_a_jump_and_leaves_a_falling_norm_alone():
  clip = train_loop.clip_spikes(3.0, decay=0.9)
  grad = {'a': jnp.ones(4), 'b': jnp.ones((2, 2))}  # Global norm sqrt(8).
  state = clip.init(grad)
  # A norm falling 10 % per step (a converging fit) is never touched, the first one included.
  for i in range(30):
    g = jax.tree_util.tree_map(lambda x, i=i: 1e3 * 0.9 ** i * x, grad)
    out, state = clip.update(g, state)
    np.testing.assert_allclose(optax.tree.norm(out), optax.tree.norm(g), rtol=1e-5)
  # Steady norms, then one 100x jump: scaled down to 3x the running mean.
  for _ in range(100):
    _, state = clip.update(grad, state)
  mean = float(state.mean_norm)
  np.testing.assert_allclose(mean, np.sqrt(8.0), rtol=1e-2)
  out, state = clip.update(jax.tree_util.tree_map(lambda x: 100 * x, grad), state)
  np.testing.assert_allclose(optax.tree.norm(out), 3.0 * mean, rtol=1e-5)
  np.testing.assert_allclose(out['a'] / out['a'][0], 1.0)  # Direction kept.
  assert float(state.mean_norm) < 1.3 * mean  # The spike enters the mean at the bound only.


def test_fit_optimiser_reads_spike_clip_and_defaults_when_missing():
  from aim_jax.fitting import fit as fit_lib
  from configs import fit as fit_config
  config = fit_config.get_config()
  assert fit_lib.OptimizerSettings.from_config(config).spike_clip == 3.0
  del config.train['spike_clip']  # A config written before the key existed.
  assert fit_lib.OptimizerSettings.from_config(config).spike_clip == 0.0
  del config.train['learning_rate']
  with pytest.raises(KeyError, match='learning_rate'):
    fit_lib.OptimizerSettings.from_config(config)
