"""Shared fixtures: `tiny_actor`, a small hand-made actor (see tests/tiny.py); `actor`, the
resolution-24 synthetic actor, and `oracle`, its ground-truth fitting basis."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/tiny.py for sub-folders.

# One on-disk XLA compilation cache for every process of a test run (the xdist workers and the
# command-line subprocesses the tests start, which inherit the environment): the tests compile
# the same small programs over and over. Set before JAX is imported; a user's own setting wins.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '.pytest_cache', 'jax'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.2')

from tiny import make_tiny_actor  # noqa: E402

from aim_jax.anatomy import constraints as constraints_lib  # noqa: E402
from aim_jax.data import synthetic  # noqa: E402
from aim_jax.fitting import basis as basis_lib  # noqa: E402
from aim_jax.models import aim  # noqa: E402


@pytest.fixture
def tiny_actor():
  """A fresh 12 x 12-vertex, 3-shape symmetric actor in mm (tests/tiny.py)."""
  return make_tiny_actor()


@pytest.fixture(scope='session')
def actor():
  """The resolution-24 synthetic actor (read-only: shared by every test of the session)."""
  return synthetic.make_synthetic_actor(resolution=24)


@pytest.fixture(scope='session')
def oracle(actor):
  """The fitting basis of the synthetic actor's ground truth."""
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  return basis_lib.basis_from_ground_truth(actor, spec)


@pytest.fixture(scope='session')
def small_oracle():
  """(the resolution-16 synthetic actor, the fitting basis of its ground truth): the small case
  of the per-frame solvers' tests (read-only)."""
  small = synthetic.make_synthetic_actor(resolution=16)
  spec = aim.make_spec(small.neutral, small.pivot, small.num_shapes)
  return small, basis_lib.basis_from_ground_truth(small, spec)


@pytest.fixture(scope='session')
def actor_and_constraints(actor):
  """The synthetic actor and its sparse constraints (rays from 30 % of the vertices)."""
  return actor, constraints_lib.compute_constraints(actor, source_fraction=0.3)
