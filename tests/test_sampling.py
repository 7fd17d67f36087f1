"""Random subsets drawn inside the steps (`aim_jax/sampling.py`)."""

import jax
import numpy as np

from aim_jax import sampling


def test_subset_is_distinct_and_in_range():
  for seed in range(5):
    index = np.asarray(sampling.random_subset(jax.random.PRNGKey(seed), 100, 30))
    assert index.shape == (30,) and index.dtype == np.int32
    assert len(set(index.tolist())) == 30
    assert index.min() >= 0 and index.max() < 100


def test_every_index_when_count_is_zero_or_large():
  for count in (0, 7, 9):
    np.testing.assert_array_equal(sampling.random_subset(jax.random.PRNGKey(0), 7, count),
                                  np.arange(7))


def test_subsets_are_uniform():
  """Every index is drawn about count / total of the time, and pairs as often as uniform
  subsets draw them (no index or neighbourhood favoured)."""
  total, count, draws = 20, 5, 4000
  draw = jax.jit(jax.vmap(lambda key: sampling.random_subset(key, total, count)))
  picked = np.asarray(draw(jax.random.split(jax.random.PRNGKey(1), draws)))
  hits = np.zeros((draws, total))
  np.put_along_axis(hits, picked, 1.0, axis=1)
  rate = hits.mean(axis=0)
  # Binomial standard deviation of each rate: sqrt(p (1 - p) / draws) = 0.0068.
  np.testing.assert_allclose(rate, count / total, atol=0.03)
  pairs = hits.T @ hits / draws
  expected = count * (count - 1) / (total * (total - 1))
  off_diagonal = pairs[~np.eye(total, dtype=bool)]
  np.testing.assert_allclose(off_diagonal, expected, atol=0.025)


def test_jits_with_static_sizes():
  draw = jax.jit(sampling.random_subset, static_argnums=(1, 2))
  assert draw(jax.random.PRNGKey(0), 1000, 64).shape == (64,)
