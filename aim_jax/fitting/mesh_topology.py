"""Mesh neighbours of the template vertices, and random samples of them, for regularisers that
act between constrained points (`coefficient_field`)."""

from __future__ import annotations

from typing import Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np

from aim_jax import sampling

MAX_NEIGHBOURS = 8


@flax.struct.dataclass
class Topology:
  """Mesh neighbours of the template vertices, for the smoothness term.

  Attributes:
    neighbours: (V, K) int32 neighbour ids (padded with the vertex itself).
    weights: (V, K) float32 umbrella weights (1 / valence, 0 for padding); rows sum to 1.
    interior: (Q,) int32 ids of the vertices the terms are sampled from: region vertices off the
      mesh boundary (whose umbrella is one-sided) with at least one neighbour.
  """
  neighbours: jnp.ndarray
  weights: jnp.ndarray
  interior: jnp.ndarray


def make_topology(faces: np.ndarray, num_vertices: int, region: Optional[np.ndarray] = None,
                  max_neighbours: int = MAX_NEIGHBOURS) -> Topology:
  """The neighbour table of (F, 3) triangles over V vertices.

  Vertices with more than `max_neighbours` neighbours keep the first ones (irregular vertices of
  a face mesh have at most 7-8). Boundary vertices (on an edge used by one triangle) and
  vertices outside the (V,) bool `region` are not sampled.
  """
  faces = np.asarray(faces, np.int64)
  edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
  undirected, counts = np.unique(np.sort(edges, axis=1), axis=0, return_counts=True)
  boundary = np.zeros(num_vertices, bool)
  boundary[undirected[counts == 1].reshape(-1)] = True
  lists = [[] for _ in range(num_vertices)]
  for a, b in undirected:
    lists[a].append(b)
    lists[b].append(a)
  neighbours = np.tile(np.arange(num_vertices)[:, None], (1, max_neighbours))
  weights = np.zeros((num_vertices, max_neighbours), np.float32)
  for v, ids in enumerate(lists):
    ids = ids[:max_neighbours]
    if ids:
      neighbours[v, :len(ids)] = ids
      weights[v, :len(ids)] = 1.0 / len(ids)
  keep = ~boundary & (weights.sum(axis=1) > 0)
  if region is not None:
    keep &= np.asarray(region, bool)
  if not keep.any():
    raise ValueError('the mesh has no interior vertex to regularise the coefficients on')
  return Topology(neighbours=jnp.asarray(neighbours, jnp.int32), weights=jnp.asarray(weights),
                  interior=jnp.asarray(np.flatnonzero(keep), jnp.int32))


def sample_vertices(topology: Topology, key: jax.Array, count: int) -> jnp.ndarray:
  """(count,) distinct interior vertex ids, uniformly at random (all of them when fewer, or when
  count is 0)."""
  return topology.interior[sampling.random_subset(key, topology.interior.shape[0], count)]
