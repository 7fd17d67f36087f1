"""Regularity of the fitted coefficient field w_j(c) between the constrained points (ours).

From sparse markers the per-point coefficients F_W(z_j, c) are seen only at the markers; between
them nothing says what w should be, and a field that fits every marker (and its noise) can
interpolate badly. Two priors, both zero for a frame whose coefficients are the same at every
point (a global blend, i.e. AIM-global), so AIM departs from AIM-global only where the data asks:

- smoothness: the umbrella Laplacian of w over the template mesh, w(c) - sum_k lambda_k w(n_k)
  over c's mesh neighbours n_k (uniform weights), squared;
- shrinkage: the departure of w(c) from the frame's mean coefficients over the sampled points,
  squared (w's spatial variance).

Both are means over frames, sampled points and coefficients, so unitless like w. They act on a
fresh random sample of template vertices every step (`mesh_topology.sample_vertices`), not on
the markers.

`mesh_topology.Topology` holds what the smoothness needs of the mesh. Both terms are linear maps
over the point axis of w, evaluated without forming w for the 'separable' F_W (w = A(c) g(z):
the map acts on A once and the frames enter through g's Gram matrix).
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from aim_jax.fitting import model as model_lib
from aim_jax.fitting.mesh_topology import Topology
from aim_jax.models import siren


def _field(params, spec: model_lib.FitSpec, coords: jnp.ndarray, valid: jnp.ndarray):
  """w at (N, 3) points, as (values over the point axis, frame weights).

  'separable': (A (N, S-1, R), g's Gram matrix (R, R) over the valid frames); otherwise
  (w moved to (N, S-1, F), valid (F,)).
  """
  if spec.variant == 'separable':
    a = siren.apply(params['coefficients'], coords, spec.coefficient_mlp())
    g = siren.apply(params['code_net'], params['codes'], spec.code_mlp())  # (F, R)
    gram = jnp.einsum('fr,f,ft->rt', g, valid, g) / jnp.maximum(jnp.sum(valid), 1.0)
    return a.reshape(coords.shape[0], spec.num_coefficients, spec.rank), gram
  w = model_lib.coefficients(params, coords, spec)  # (F, N, S-1)
  return jnp.moveaxis(w, 0, -1), valid


def _energy(mapped: jnp.ndarray, frames: jnp.ndarray, separable: bool) -> jnp.ndarray:
  """Mean over valid frames, points and coefficients of the mapped field squared."""
  if separable:
    size = mapped.shape[0] * mapped.shape[1]
    return jnp.einsum('qsr,rt,qst->', mapped, frames, mapped) / size
  per_frame = jnp.mean(mapped * mapped, axis=(0, 1))
  return jnp.sum(per_frame * frames) / jnp.maximum(jnp.sum(frames), 1.0)


def umbrella(weights: jnp.ndarray) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """The map x -> x_c - sum_k lambda_k x_{n_k} on points ordered [P centres, P*K neighbours]."""
  count, k = weights.shape

  def apply(x):
    around = x[count:].reshape((count, k) + x.shape[1:])
    return x[:count] - jnp.einsum('pk,pk...->p...', weights, around)
  return apply


def centring(x: jnp.ndarray) -> jnp.ndarray:
  """x - mean over points: the departure from the points' common (global) value."""
  return x - jnp.mean(x, axis=0, keepdims=True)


def regularisers(params, spec: model_lib.FitSpec, coords: jnp.ndarray, topology: Topology,
                 vertex_ids: jnp.ndarray, valid: jnp.ndarray) -> dict:
  """{'coefficient_smooth', 'coefficient_shrink'} at the sampled vertices.

  Args:
    coords: (V, 3) normalised template points of every vertex (the basis's coords).
    vertex_ids: (P,) sampled vertex ids (`mesh_topology.sample_vertices`).
  """
  neighbours = topology.neighbours[vertex_ids]  # (P, K)
  points = jnp.concatenate([coords[vertex_ids], coords[neighbours.reshape(-1)]])
  # One evaluation of the field at the centres and their neighbours serves both terms.
  values, frames = _field(params, spec, points, valid)
  separable = spec.variant == 'separable'
  smooth = _energy(umbrella(topology.weights[vertex_ids])(values), frames, separable)
  shrink = _energy(centring(values[:vertex_ids.shape[0]]), frames, separable)
  return {'coefficient_smooth': smooth, 'coefficient_shrink': shrink}
