"""Small helpers shared by the tests: config overrides, file snapshots, damaged checkpoints,
tree comparison, processes of a multi-process run."""

import hashlib
import os
import socket

import jax
import numpy as np


def with_overrides(config, **dotted):
  """The config with fields set by dotted name: with_overrides(c, **{'train.num_steps': 5})."""
  for key, value in dotted.items():
    node = config
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  return config


def file_hashes(folder):
  """{relative path: sha256} of every file below folder."""
  out = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
  return out


def damage_checkpoint(folder) -> int:
  """Truncates every file over 16 bytes below a checkpoint step folder; returns how many."""
  damaged = 0
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      if os.path.getsize(path) > 16:
        with open(path, 'r+b') as f:
          f.truncate(8)
        damaged += 1
  return damaged


def assert_trees_close(a, b, **tolerances):
  """Every leaf of two pytrees equal within numpy tolerances."""
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tolerances)


def free_port() -> int:
  """A TCP port on localhost that nothing listens on now (for a run's coordinator)."""
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def one_cpu_env() -> dict:
  """This environment for a subprocess that sees one CPU device (one process of a
  multi-process run)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)
  return env
