"""Compile boundaries hold: a second call with the same shapes and settings never recompiles.

Counts XLA compilations per jitted function from JAX's own compile log (`jax.log_compiles`).
"""

import collections
import contextlib
import logging
import re

import jax
import numpy as np
import pytest

from aim_jax.data import synthetic
from aim_jax.fitting import baselines
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from configs import fit_test


@pytest.fixture(scope='module')
def actor():
  return synthetic.make_synthetic_actor(resolution=24)


@pytest.fixture(autouse=True)
def no_persistent_cache():
  """Compiles for real: a hit in the suite's on-disk cache (conftest.py) logs no compilation."""
  enabled = jax.config.jax_enable_compilation_cache
  jax.config.update('jax_enable_compilation_cache', False)
  yield
  jax.config.update('jax_enable_compilation_cache', enabled)


@contextlib.contextmanager
def count_compilations():
  """Yields a Counter {jitted function name: XLA compilations} filled while the block runs."""
  counts = collections.Counter()

  class Handler(logging.Handler):
    def emit(self, record):
      match = re.search(r'Finished XLA compilation of jit\((\w+)\)', record.getMessage())
      if match:
        counts[match.group(1)] += 1

  handler = Handler(level=logging.DEBUG)
  logger = logging.getLogger('jax')
  logger.addHandler(handler)
  try:
    with jax.log_compiles():
      yield counts
  finally:
    logger.removeHandler(handler)


def test_evaluating_a_model_twice_compiles_once(actor):
  # A spec no other test uses (hidden 24), so the first call here must compile.
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes, hidden=24, depth=2)
  with count_compilations() as compiled:
    first = aim.evaluate_chunked(aim.init(jax.random.PRNGKey(0), spec), actor.neutral, spec)
    second = aim.evaluate_chunked(aim.init(jax.random.PRNGKey(1), spec), actor.neutral, spec)
  assert compiled['_evaluate_block'] == 1, compiled
  assert not np.allclose(first['thickness'], second['thickness'])  # Really two models.


def test_two_chunks_and_three_methods_compile_once_each(tmp_path, actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  oracle = basis_lib.basis_from_ground_truth(actor, spec)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  config = fit_test.get_config()
  config.train.num_steps = 6
  config.train.log_every = 3
  config.train.chunk_frames = 3
  config.model.code_dim = 7  # Shapes no other test uses.
  targets = {'dense': targets_lib.dense_targets(actor.shapes[:6])}
  with count_compilations() as compiled:
    _fit_two_methods_and_gbs(config, oracle, gbs, targets, tmp_path, actor)
  # Two chunks per method: one step and one evaluation compilation per AIM method (their F_W
  # differ), one GBS solve for both chunks.
  assert compiled['fit_step'] == 2, compiled
  assert compiled['_estimate_block'] == 2, compiled
  assert compiled['_solve_frames'] == 1, compiled


def _fit_two_methods_and_gbs(config, oracle, gbs, targets, tmp_path, actor):
  for method in ('aim', 'aim_global'):
    variant = 'global' if method == 'aim_global' else config.model.variant
    fit_spec = fit_lib.fit_spec(config, oracle.num_coefficients, variant)
    result = fit_lib.fit_sequence(config, fit_spec, oracle, targets, str(tmp_path / method),
                                  log=None)
    assert result['frames'].shape == (6, actor.num_vertices, 3)
  for start in (0, 3):  # GBS on the same two chunks.
    chunk = {k: t.frames(slice(start, start + 3)) for k, t in targets.items()}
    baselines.fit_gbs(gbs, chunk)
