"""A generic linear 3DMM made from the ICT-FaceKit model: the FLAME stand-in of B.6.

    x(a, b_j) = mean + sum_k a_k I_k + sum_m b_jm X_m        (V, 3) mm

with the identity space truncated to the first K ICT identity modes (already scaled by their
standard deviation, so a ~ N(0, 1)) and the 53 ICT expression deltas as the expression basis,
restricted to an ICT actor's skin vertices in the actor's vertex order (`ict.region_ids` of the
region recorded in the actor's bone_report.json, as `prepare.make_ict_actor` builds it).

The model does not know the actor's identity: it fits one identity vector `a` shared by every
frame of a sequence and an expression vector `b_j` per frame, to the same `TargetSet`s (dense 3D,
sparse 3D markers) that AIM is fitted to. With K < 100 modes it cannot reach an arbitrary ICT
identity exactly; the residual shows where a generic model misses the individual's shape.

The fit minimises, over F frames with N_j visible points in frame j (all target kinds together),

    sum_j (1 / N) sum_points w_p |x_p(a, b_j) - y_jp|^2 + ridge_b sum_j |b_j|^2 + F prior_a |a|^2

(N the number of constrained points, w_p the visibility, mm^2), i.e. per frame a mean squared
residual plus ridges. It is linear, so it is solved in closed form: normal equations for
[a, b_1 .. b_F], eliminating each frame's b_j block (Schur complement onto a).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, Mapping, Optional

import numpy as np

from aim_jax.data import ict
from aim_jax.fitting.targets import TargetSet

KINDS_3D = ('dense', 'markers')


@dataclasses.dataclass(frozen=True)
class GenericModel:
  """A linear 3DMM on V vertices.

  Attributes:
    mean: (V, 3) float64 mm mean (generic neutral) shape.
    identity: (K, V, 3) float64 mm identity modes (coefficients ~ N(0, 1)).
    expression: (E, V, 3) float64 mm expression deltas.
    name: a short description for reports.
  """
  mean: np.ndarray
  identity: np.ndarray
  expression: np.ndarray
  name: str = 'generic 3DMM'

  def __post_init__(self):
    mean = np.asarray(self.mean)
    if mean.ndim != 2 or mean.shape[1] != 3:
      raise ValueError(f'{self.name}: mean must be (V, 3), got {mean.shape}')
    for what in ('identity', 'expression'):
      basis = np.asarray(getattr(self, what))
      if basis.ndim != 3 or basis.shape[1:] != mean.shape:
        raise ValueError(f'{self.name}: {what} basis must be (count, {mean.shape[0]}, 3) to '
                         f'match the mean\'s {mean.shape[0]} vertices, got {basis.shape}')

  @property
  def num_vertices(self) -> int:
    return int(self.mean.shape[0])

  @property
  def num_identity(self) -> int:
    return int(self.identity.shape[0])

  @property
  def num_expression(self) -> int:
    return int(self.expression.shape[0])


@dataclasses.dataclass(frozen=True)
class GenericFit:
  """A fitted sequence.

  Attributes:
    identity: (K,) identity coefficients shared by every frame.
    expression: (F, E) expression coefficients per frame.
    frames: (F, V, 3) float32 mm fitted frames.
    objective: the minimised objective (mm^2, see the module docstring).
  """
  identity: np.ndarray
  expression: np.ndarray
  frames: np.ndarray
  objective: float


# ---------------------------------------------------------------------------------------------
# Building the model.


def from_ict(model: ict.IctModel, vertex_ids: np.ndarray, num_identity: int) -> GenericModel:
  """The generic 3DMM of an ICT model on `vertex_ids`: first `num_identity` identity modes and
  the model's 53 expressions.

  Args:
    model: the ICT model (mm).
    vertex_ids: (V,) head vertex ids of the actor's skin, in the actor's order.
    num_identity: K, identity modes kept (0 <= K <= the model's modes).
  """
  available = model.identity_deltas.shape[0]
  if not 0 <= int(num_identity) <= available:
    raise ValueError(f'{model.source or "ICT model"}: {num_identity} identity modes asked for, '
                     f'the model has {available}')
  ids = np.asarray(vertex_ids, np.int64)
  return GenericModel(
      mean=np.asarray(model.neutral, np.float64)[ids],
      identity=np.asarray(model.identity_deltas[:int(num_identity)], np.float64)[:, ids],
      expression=np.asarray(model.expression_deltas[:ict.NUM_EXPRESSIONS], np.float64)[:, ids],
      name=f'generic 3DMM (ICT, {int(num_identity)} identity modes)')


def truncate(model: GenericModel, num_identity: int) -> GenericModel:
  """The same model with only its first `num_identity` identity modes."""
  if not 0 <= int(num_identity) <= model.num_identity:
    raise ValueError(f'{model.name}: cannot keep {num_identity} of {model.num_identity} '
                     'identity modes')
  return dataclasses.replace(model, identity=model.identity[:int(num_identity)],
                             name=f'{model.name.split(" (")[0]} ({int(num_identity)} identity '
                                  'modes)')


def ict_actor_vertex_ids(actor_dir: str, num_vertices: Optional[int] = None) -> np.ndarray:
  """(V,) ICT head vertex ids of a prepared ICT actor's skin (the region in bone_report.json).

  Args:
    actor_dir: a folder written by `experiments/prepare_actor.py --source=ict`.
    num_vertices: when given, the actor's vertex count, checked against the region's.
  Raises:
    ValueError: one line naming the file, if it is not an ICT actor or the counts disagree.
  """
  file = os.path.join(actor_dir, 'bone_report.json')
  try:
    with open(file, encoding='utf-8') as f:
      region = json.load(f)['region']
  except (OSError, ValueError, KeyError) as err:
    raise ValueError(f'{file}: cannot read the ICT region ({type(err).__name__}); is '
                     f'{actor_dir} a prepared ICT actor folder?') from None
  ids = ict.region_ids(region)
  if num_vertices is not None and ids.size != num_vertices:
    raise ValueError(f'{file}: ICT region {region!r} has {ids.size} vertices but the actor has '
                     f'{num_vertices}')
  return ids


# ---------------------------------------------------------------------------------------------
# Evaluating and fitting.


def generic_frames(model: GenericModel, identity: np.ndarray, expression: np.ndarray
                   ) -> np.ndarray:
  """Shapes of the model: identity (K,), expression (F, E) -> (F, V, 3) float64 mm."""
  head = model.mean + np.einsum('k,kvd->vd', np.asarray(identity, np.float64), model.identity)
  return head[None] + np.einsum('fe,evd->fvd', np.asarray(expression, np.float64),
                                model.expression)


def _at_points(target: TargetSet, basis: np.ndarray) -> np.ndarray:
  """(C, V, 3) per-vertex basis -> (M, 3, C) at the target's surface points."""
  ids = np.asarray(target.points.vertices)
  weights = np.asarray(target.points.weights, np.float64)
  return np.einsum('mk,cmkd->mdc', weights, basis[:, ids])


def _check_targets(model: GenericModel, targets: Mapping[str, TargetSet]) -> int:
  """The common frame count; ValueError for 2D kinds, vertices outside the model, or mismatched
  frame counts."""
  if not targets:
    raise ValueError(f'{model.name}: no targets to fit')
  frames = set()
  for kind, target in targets.items():
    if target.kind not in KINDS_3D:
      raise ValueError(f'{model.name}: fits 3D targets ({", ".join(KINDS_3D)}) only, got '
                       f'{target.kind!r} for {kind!r}')
    ids = np.asarray(target.points.vertices)
    if ids.size and (ids.min() < 0 or ids.max() >= model.num_vertices):
      raise ValueError(f'{model.name}: {kind} targets use vertex {int(ids.max())} but the model '
                       f'has {model.num_vertices} vertices (targets must be in its topology)')
    frames.add(target.num_frames)
  if len(frames) != 1:
    raise ValueError(f'{model.name}: target kinds have different frame counts {sorted(frames)}')
  return frames.pop()


def _stacked_system(model: GenericModel, targets: Mapping[str, TargetSet],
                    weights: Optional[Mapping[str, float]]):
  """Rows of every target kind: basis (R, K + E), mean (R,), values (F, R), row weights (F, R)
  with the 1 / N normalisation and per-kind weights folded in."""
  bases = np.concatenate([model.identity, model.expression])
  rows, means, values, row_weights = [], [], [], []
  count = sum(t.points.count for t in targets.values())
  for kind in sorted(targets):
    t = targets[kind]
    rows.append(_at_points(t, bases).reshape(-1, bases.shape[0]))
    means.append(_at_points(t, model.mean[None])[..., 0].reshape(-1))
    values.append(np.asarray(t.values, np.float64).reshape(t.num_frames, -1))
    scale = (1.0 if weights is None else float(weights.get(kind, 1.0))) / count
    row_weights.append(np.repeat(np.asarray(t.visible, np.float64) * scale, 3, axis=1))
  return (np.concatenate(rows), np.concatenate(means), np.concatenate(values, axis=1),
          np.concatenate(row_weights, axis=1))


def fit_generic(model: GenericModel, targets: Mapping[str, TargetSet],
                identity_prior: float = 1e-4, expression_ridge: float = 1e-4,
                weights: Optional[Mapping[str, float]] = None) -> GenericFit:
  """Fits one identity and per-frame expressions to 3D targets in closed form.

  Args:
    model: the generic 3DMM.
    targets: {kind: TargetSet} of 'dense' and/or 'markers' over F frames (visibility honoured).
    identity_prior: weight of |a|^2 (the N(0, 1) prior), per frame, relative to a frame's mean
      squared per-point residual in mm^2.
    expression_ridge: weight of |b_j|^2 per frame, same units.
    weights: optional per-kind data weights (default 1).
  Returns:
    `GenericFit` with frames (F, V, 3) mm.
  Raises:
    ValueError: 2D targets, targets outside the model's vertices, mismatched frame counts,
      negative prior weights.
  """
  if identity_prior < 0 or expression_ridge < 0:
    raise ValueError(f'{model.name}: prior weights must be >= 0, got identity '
                     f'{identity_prior}, expression {expression_ridge}')
  num_frames = _check_targets(model, targets)
  basis, mean, values, row_weights = _stacked_system(model, targets, weights)
  k, e = model.num_identity, model.num_expression
  residual0 = values - mean[None]  # (F, R): targets minus the mean shape.
  # Frames with the same visibility share their Gram matrix.
  patterns, inverse = np.unique(row_weights, axis=0, return_inverse=True)
  inverse = np.asarray(inverse).reshape(-1)
  grams = np.stack([basis.T @ (w[:, None] * basis) for w in patterns])  # (P, K+E, K+E)
  rhs = np.einsum('rc,fr->fc', basis, row_weights * residual0)  # (F, K+E)

  h_aa = grams[inverse][:, :k, :k]
  h_ab = grams[inverse][:, :k, k:]
  h_bb = grams[inverse][:, k:, k:] + expression_ridge * np.eye(e)
  g_a, g_b = rhs[:, :k], rhs[:, k:]
  # Eliminate each frame's expression block: b_j = H_bb^-1 (g_b - H_ba a).
  solve_bb = np.linalg.solve(h_bb, np.concatenate([np.swapaxes(h_ab, 1, 2), g_b[..., None]],
                                                  axis=2))  # (F, E, K + 1)
  schur = (h_aa.sum(axis=0) + num_frames * identity_prior * np.eye(k)
           - np.einsum('fke,fel->kl', h_ab, solve_bb[:, :, :k]))
  reduced = g_a.sum(axis=0) - np.einsum('fke,fe->k', h_ab, solve_bb[:, :, k])
  identity = np.linalg.solve(schur, reduced) if k else np.zeros(0)
  expression = solve_bb[:, :, k] - np.einsum('fek,k->fe', solve_bb[:, :, :k], identity)

  coefficients = np.concatenate([np.broadcast_to(identity, (num_frames, k)), expression], axis=1)
  residual = coefficients @ basis.T - residual0
  objective = float(np.sum(row_weights * residual ** 2)
                    + expression_ridge * np.sum(expression ** 2)
                    + num_frames * identity_prior * np.sum(identity ** 2))
  frames = generic_frames(model, identity, expression).astype(np.float32)
  return GenericFit(identity=identity, expression=expression, frames=frames,
                    objective=objective)


def reachable_neutral(model: GenericModel, neutral: np.ndarray, region=None) -> Dict:
  """How close the identity space alone gets to a neutral shape: least-squares projection of
  `neutral` (V, 3) mm onto mean + span(identity) (no prior), on `region` (V,) bool (default all).

  Returns {'identity': (K,), 'shape': (V, 3) mm, 'error_mm': (V,) per-vertex distance}.
  """
  neutral = np.asarray(neutral, np.float64)
  if neutral.shape != model.mean.shape:
    raise ValueError(f'{model.name}: neutral has shape {neutral.shape}, the model '
                     f'{model.mean.shape}')
  mask = np.ones(model.num_vertices, bool) if region is None else np.asarray(region, bool)
  a = model.identity[:, mask].reshape(model.num_identity, -1).T
  b = (neutral - model.mean)[mask].reshape(-1)
  identity = np.linalg.lstsq(a, b, rcond=None)[0] if model.num_identity else np.zeros(0)
  shape = model.mean + np.einsum('k,kvd->vd', identity, model.identity)
  return {'identity': identity, 'shape': shape,
          'error_mm': np.linalg.norm(shape - neutral, axis=-1)}
