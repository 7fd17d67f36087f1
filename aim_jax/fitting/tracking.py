"""Live tracking: after a short calibration segment is fitted in batch, every new frame is solved
on its own, warm-started from the previous frame, in one compiled call.

The calibration (`fit.fit_frames` on the first frames, the batch fit's settings) learns F_T and
the 'separable' F_W, w(z, c) = A(c) g(z). Tracking freezes the point network A(c) and folds it
into the cached expression deltas once (`TrackingBasis.per_rank` = sum_i A_ir(c) e_i(c)). A
tracked frame has its own unknowns u = [F_T's raw outputs (jaw, and head with `head_pose`),
W (K x (S-1)) the coefficients of K smooth template regions (`region_weights`), g (R)]:

  w(c) = A(c) g + sum_k phi_k(c) W_k,
  x(c) = H(skin(s0(c), k(c), T) + sum_i w_i(c) e_i(c)),

so the calibrated per-point field carries what the calibration showed and the regions reach
expressions it did not (with g alone the tracked demo frames drifted to 2.5 mm; with one global
region the error was 2.7x the batch fit's). The objective is the batch fit's for one frame: the
data terms (mm^2; 2D residuals converted at the point's depth; robust penalties by iteratively
reweighted least squares, or by pseudo-observations in `solve_frame_linear`), the coefficient
magnitude (at its own weight, `tracking.coefficients`: a lone frame has no network and no
other frames to hold its regions' coefficients) and the temporal term toward the previous
frame's coefficients and transforms. The coefficient-field terms of marker and landmark fits
shape A(c), which tracking keeps frozen, so they are left out.

Two solvers, both one jitted call per frame: `solve_frame_linear` for 3D targets without a head
pose (x is linear in the coefficients and affine in the jaw's rotation and translation, so the
coefficients are eliminated in closed form: what is left is a 12-number quadratic in the jaw,
set up once while the visibility holds, and a frame costs one pass over its observed values;
Levenberg-Marquardt runs on the jaw's nine raw numbers against that quadratic), and
`solve_frame` (Levenberg-Marquardt on all of u) for landmarks and head poses, its
Gauss-Newton system built from the same linear structure (`_normal_equations`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, Dict, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aim_jax import geometry
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import model as model_lib
from aim_jax.fitting import objectives
from aim_jax.fitting.basis import ModelBasis
from aim_jax.fitting.targets import SurfacePoints, TargetSet, interpolate
from aim_jax.models import siren


@flax.struct.dataclass
class TrackingBasis:
  """The calibrated model with F_W's point network folded in, at V template vertices (mm).

  Attributes:
    neutral: (V, 3) s0 mm; skinning: (V,) k; pivot: (3,) mm.
    deltas: (V, S-1, 3) mm, the expression deltas e_i(c).
    per_rank: (V, R, 3) mm, sum_i A_ir(c) e_i(c): the offset of rank component r.
    regularized: (P, S-1, R) A(c) at the P vertices the regularisers average over.
    regions: (V, K) smooth weights of K regions of the template, summing to one at every vertex
      (K = 1: one global coefficient vector); regions_regularized: (P, K) at the P vertices.
  """
  neutral: jnp.ndarray
  skinning: jnp.ndarray
  pivot: jnp.ndarray
  deltas: jnp.ndarray
  per_rank: jnp.ndarray
  regularized: jnp.ndarray
  regions: jnp.ndarray
  regions_regularized: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class SolverSettings:
  """Static settings of a per-frame solve (hashable: a jit static argument).

  Attributes:
    spec: the fitting model's FitSpec ('separable').
    weights: ((term, weight), ...) of the batch fit's loss (`fit.loss_options`).
    robust, robust_scale: the data terms' penalty (`objectives.robust_penalty`).
    iterations: Levenberg-Marquardt iterations per frame.
    damping: the initial damping, relative to the Gauss-Newton matrix's diagonal.
    robust_iterations: `solve_frame_linear`'s pseudo-observation solves with a robust penalty.
  """
  spec: model_lib.FitSpec
  weights: tuple
  robust: str = 'none'
  robust_scale: float = 1.0
  iterations: int = 10
  damping: float = 1e-3
  robust_iterations: int = 3


def region_weights(points: np.ndarray, count: int) -> np.ndarray:
  """(V, count) smooth partition of unity over template points (V, 3) mm: Gaussian bumps at
  `count` farthest-point-sampled centres (width: the mean distance between nearest centres),
  normalised to sum to one at every point. count 1: all ones."""
  points = np.asarray(points, np.float64)
  if count <= 1:
    return np.ones((len(points), 1), np.float32)
  centres = [int(np.argmin(points[:, 1]))]
  distance = np.linalg.norm(points - points[centres[0]], axis=1)
  for _ in range(count - 1):
    centres.append(int(np.argmax(distance)))
    distance = np.minimum(distance, np.linalg.norm(points - points[centres[-1]], axis=1))
  c = points[centres]
  between = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(count) * 1e9
  width = float(between.min(axis=1).mean())
  squared = np.sum((points[:, None] - c[None]) ** 2, axis=-1)
  bumps = np.exp(-0.5 * (squared - squared.min(axis=1, keepdims=True)) / width ** 2)
  return (bumps / bumps.sum(axis=1, keepdims=True)).astype(np.float32)


def tracking_basis(networks: Dict, basis: ModelBasis, spec: model_lib.FitSpec,
                   regularized_points: int = 256, regions: int = 1) -> TrackingBasis:
  """Folds the calibrated point network A(c) into the cached deltas (separable F_W only), with
  `regions` smooth regions for the frame's own coefficients (`region_weights`)."""
  if spec.variant != 'separable':
    raise ValueError(f"tracking needs the 'separable' F_W (model.variant), got {spec.variant!r}")
  a = point_coefficients(networks, basis, spec)
  ids = np.unique(np.linspace(0, basis.num_vertices - 1, regularized_points).astype(np.int64))
  weights = region_weights(np.asarray(basis.points), regions)
  return TrackingBasis(neutral=basis.neutral, skinning=basis.skinning, pivot=basis.pivot,
                       deltas=basis.deltas, per_rank=jnp.einsum('vsr,vsd->vrd', a, basis.deltas),
                       regularized=a[ids], regions=jnp.asarray(weights),
                       regions_regularized=jnp.asarray(weights[ids]))


def point_coefficients(networks: Dict, basis: ModelBasis, spec: model_lib.FitSpec
                       ) -> jnp.ndarray:
  """(V, S-1, R) the separable F_W's point network A(c) at every template vertex."""
  a = siren.apply(networks['coefficients'], basis.coords, spec.coefficient_mlp())
  return a.reshape(basis.num_vertices, spec.num_coefficients, spec.rank)


def unknowns_of(networks: Dict, code: jnp.ndarray, spec: model_lib.FitSpec,
                regions: int = 1) -> jnp.ndarray:
  """The per-frame unknowns u = [F_T's raw outputs (9|18), the regions' coefficients
  (regions x (S-1)), g (R)] that the calibrated networks give a code (region coefficients 0)."""
  raw = siren.apply(networks['transform'], code[None], spec.transform_mlp())[0]
  g = siren.apply(networks['code_net'], code[None], spec.code_mlp())[0]
  return jnp.concatenate([raw, jnp.zeros(regions * spec.num_coefficients, raw.dtype), g])


def split_unknowns(u: jnp.ndarray, spec: model_lib.FitSpec):
  """(transforms as `model.transforms` gives them for one frame, the regions' coefficients
  (K, S-1), g (R,)) from u."""
  n, s = spec.transform_outputs, spec.num_coefficients
  regions = (u.shape[0] - n - spec.rank) // s
  w_global = u[n:n + regions * s].reshape(regions, s)
  return model_lib.decode_transforms(u[:n], spec), w_global, u[n + regions * s:]


def _skinned_at(tb: TrackingBasis, frame: Dict, vertex_ids: jnp.ndarray) -> jnp.ndarray:
  """(N, 3) mm the neutral at `vertex_ids` skinned by the frame's jaw (no offsets)."""
  return geometry.skin(tb.neutral[vertex_ids], tb.skinning[vertex_ids], frame['jaw_rotation'],
                       frame['jaw_translation'], tb.pivot)


def frame_points(tb: TrackingBasis, u: jnp.ndarray, spec: model_lib.FitSpec,
                 vertex_ids: jnp.ndarray) -> jnp.ndarray:
  """(N, 3) mm: the frame of unknowns u at vertices `vertex_ids` (N,)."""
  frame, w_global, g = split_unknowns(u, spec)
  offsets = (jnp.einsum('r,nrd->nd', g, tb.per_rank[vertex_ids])
             + jnp.einsum('ns,nsd->nd', tb.regions[vertex_ids] @ w_global,
                          tb.deltas[vertex_ids]))
  x = _skinned_at(tb, frame, vertex_ids) + offsets
  if 'head_rotation' in frame:
    x = geometry.rigid_about_pivot(x, frame['head_rotation'], frame['head_translation'],
                                   tb.pivot)
  return x


def coefficients_at(tb: TrackingBasis, u: jnp.ndarray, spec: model_lib.FitSpec
                    ) -> jnp.ndarray:
  """(P, S-1) the frame's coefficients w(c) = A(c) g + sum_k phi_k(c) W_k at the regularised
  vertices."""
  _, w_global, g = split_unknowns(u, spec)
  return jnp.einsum('psr,r->ps', tb.regularized, g) + tb.regions_regularized @ w_global


def _robust_weight(squared: jnp.ndarray, kind: str, scale: float) -> jnp.ndarray:
  """IRLS weight d rho / d(r^2) of `objectives.robust_penalty` (element-wise)."""
  return jax.grad(lambda s: jnp.sum(objectives.robust_penalty(s, kind, scale)))(squared)


def frame_points_at(tb: TrackingBasis, u: jnp.ndarray, spec: model_lib.FitSpec,
                    points: SurfacePoints) -> jnp.ndarray:
  """(M, 3) mm: the frame of unknowns u at M surface points (`frame_points`, interpolated)."""
  k = points.vertices.shape[1]
  x = frame_points(tb, u, spec, points.vertices.reshape(-1))
  return interpolate(points, x.reshape(-1, k, 3))


def _data_residuals(tb, u, spec, target: TargetSet):
  """Per-point residual vectors (M, D) and the mm per unit (M,) that makes them mm (1 for 3D,
  the point's depth over the focal length for landmarks: `objectives.pixel_residuals`)."""
  return _residuals_at(frame_points_at(tb, u, spec, target.points), target)


def _residuals_at(x: jnp.ndarray, target: TargetSet):
  """`_data_residuals` of the frame's points x (M, 3) mm at the target's surface points."""
  values, = target.values
  if target.kind != 'landmarks':
    return x - values, jnp.ones(x.shape[0], x.dtype)
  return objectives.pixel_residuals(x, target.camera, values)


def _residuals(u, tb, targets, previous, settings: SolverSettings, robust_w):
  """The frame's objective as a vector whose squared norm it is (robust terms weighted by
  `robust_w`, {kind: (M,)}, held fixed within an iteration). `previous` is the previous
  frame's unknowns (the temporal term)."""
  weights, spec = dict(settings.weights), settings.spec
  parts = []
  for kind in sorted(targets):
    residual, mm = _data_residuals(tb, u, spec, targets[kind])
    visible, = targets[kind].visible
    scale = weights[kind] / jnp.maximum(jnp.sum(visible), 1.0)
    parts.append((jnp.sqrt(scale * visible * robust_w[kind]) * mm)[:, None] * residual)
  w = coefficients_at(tb, u, spec)
  w_previous = coefficients_at(tb, previous, spec)
  parts.append(jnp.sqrt(weights['coefficients'] / w.size) * w)
  parts.append(jnp.sqrt(weights['temporal'] / w.size) * (w - w_previous))
  n = spec.transform_outputs
  parts.append(jnp.sqrt(weights['temporal'] / n) * (u[:n] - previous[:n]))
  return jnp.concatenate([p.reshape(-1) for p in parts])


def _robust_weights(u, tb, targets, settings: SolverSettings):
  out = {}
  for kind, target in targets.items():
    residual, _ = _data_residuals(tb, u, settings.spec, target)
    out[kind] = _robust_weight(jnp.sum(residual ** 2, axis=-1), settings.robust,
                               settings.robust_scale)
  return out


def _target_points(tb: TrackingBasis, raw: jnp.ndarray, offsets: jnp.ndarray,
                   spec: model_lib.FitSpec, target: TargetSet) -> jnp.ndarray:
  """(M, 3) mm the frame at the target's surface points from F_T's raw outputs and the
  points' offsets (M, 3) mm (`_design` @ c): the jaw-skinned neutral plus the offsets, moved
  by the head pose when the model has one (`frame_points`, interpolated)."""
  x = _skinned(tb, raw, spec, target) + offsets
  frame = model_lib.decode_transforms(raw, spec)
  if 'head_rotation' in frame:
    x = geometry.rigid_about_pivot(x, frame['head_rotation'], frame['head_translation'],
                                   tb.pivot)
  return x


def _point_residuals(tb, raw, offsets, spec, target: TargetSet):
  """`_data_residuals` from the raw transform outputs and the offsets at the target's points."""
  return _residuals_at(_target_points(tb, raw, offsets, spec, target), target)


def _normal_equations(u, tb, targets, previous, settings: SolverSettings, robust_w, designs,
                      gram):
  """The Gauss-Newton system of the frame's objective (`_residuals`) at u: (J'J (N, N), J'r
  (N,)), N the unknowns, built from its structure instead of differentiating
  every residual by every unknown: a point's residual depends on the coefficient unknowns c
  only through its own offset, design @ c (`_design`), so its Jacobian in c is its (D, 3)
  Jacobian in its offset (three forward-mode directions for all points at once) times its
  design rows; the raw transform outputs (9 or 18) are differentiated directly; the
  regularisers are the quadratic form `gram` (`_coefficient_gram`) in c. A landmark frame's
  cost is then points x D x N^2 for J'J, not points x D x N forward passes of the model."""
  weights, spec = dict(settings.weights), settings.spec
  n = spec.transform_outputs
  raw, c = u[:n], u[n:]
  normal = jnp.zeros((u.shape[0], u.shape[0]), u.dtype)
  gradient = jnp.zeros(u.shape[0], u.dtype)
  for kind in sorted(targets):
    target, design = targets[kind], designs[kind]
    offsets = design @ c

    def residual(raw, shift, target=target, offsets=offsets):
      return _point_residuals(tb, raw, offsets + shift, spec, target)[0]

    shift = jnp.zeros(3, u.dtype)
    r, mm = _point_residuals(tb, raw, offsets, spec, target)
    by_raw, by_offset = jax.jacfwd(residual, argnums=(0, 1))(raw, shift)  # (M,D,n), (M,D,3)
    jacobian = jnp.concatenate([by_raw, jnp.einsum('mke,mec->mkc', by_offset, design)], -1)
    visible, = target.visible
    rows = (weights[kind] / jnp.maximum(jnp.sum(visible), 1.0) * visible * robust_w[kind]
            * mm ** 2)
    normal = normal + jnp.einsum('mki,m,mkj->ij', jacobian, rows, jacobian)
    gradient = gradient + jnp.einsum('mki,m,mk->i', jacobian, rows, r)
  # Coefficient magnitude and temporal terms: (w(c) and w(c) - w(c_prev)) mean squares.
  normal = normal.at[n:, n:].add((weights['coefficients'] + weights['temporal']) * gram)
  gradient = gradient.at[n:].add(weights['coefficients'] * gram @ c
                                 + weights['temporal'] * gram @ (c - previous[n:]))
  temporal = weights['temporal'] / n
  normal = normal.at[:n, :n].add(temporal * jnp.eye(n, dtype=u.dtype))
  return normal, gradient.at[:n].add(temporal * (raw - previous[:n]))


def frame_designs(tb: TrackingBasis, targets: Dict[str, TargetSet]) -> Dict[str, jnp.ndarray]:
  """{kind: (M, 3, C)} `_design` of every target kind: what `solve_frame` reuses across frames
  with the same target points (it does not depend on the values or their visibility)."""
  return {kind: _design(tb, targets[kind]) for kind in sorted(targets)}


@functools.partial(jax.jit, static_argnames=('settings',))
def solve_frame(u: jnp.ndarray, tb: TrackingBasis, targets: Dict[str, TargetSet],
                settings: SolverSettings, designs: Optional[Dict] = None):
  """One frame's unknowns by Levenberg-Marquardt on every unknown, from the previous frame's
  `u`, with the Gauss-Newton system built from the frame's structure (`_normal_equations`).

  Args:
    u: the previous frame's unknowns (`unknowns_of`, `split_unknowns`): the start and the
      temporal term's reference.
    targets: {kind: TargetSet} of this one frame (values (1, M, D)).
    designs: `frame_designs` of the targets (formed here when not given).
  Returns:
    (u, the objective at it).
  """
  previous = u
  if designs is None:
    designs = frame_designs(tb, targets)
  gram = _coefficient_gram(tb)

  def cost(z, robust_w):
    r = _residuals(z, tb, targets, previous, settings, robust_w)
    return jnp.sum(r * r)

  def iteration(_, carry):
    z, damping = carry
    robust_w = _robust_weights(z, tb, targets, settings)
    normal, gradient = _normal_equations(z, tb, targets, previous, settings, robust_w,
                                         designs, gram)
    diagonal = jnp.diag(normal) + 1e-9
    step = jnp.linalg.solve(normal + damping * jnp.diag(diagonal), -gradient)
    better = cost(z + step, robust_w) < cost(z, robust_w)
    z = jnp.where(better, z + step, z)
    damping = jnp.where(better, damping * 0.3, damping * 10.0)
    return z, damping

  u, _ = jax.lax.fori_loop(0, settings.iterations, iteration,
                           (u, jnp.asarray(settings.damping, u.dtype)))
  return u, cost(u, _robust_weights(u, tb, targets, settings))


def _design(tb: TrackingBasis, target: TargetSet) -> jnp.ndarray:
  """(M, 3, C) the linear map from the coefficient unknowns c = u[n:] (the regions'
  coefficients, then g) to the offsets at the target's M surface points (mm)."""
  k = target.points.vertices.shape[1]
  ids = target.points.vertices.reshape(-1)
  deltas = jnp.swapaxes(tb.deltas[ids], 1, 2)  # (N, 3, S-1)
  by_region = tb.regions[ids][:, None, :, None] * deltas[:, :, None, :]  # (N, 3, K, S-1)
  design = jnp.concatenate([by_region.reshape(ids.shape[0], 3, -1),
                            jnp.swapaxes(tb.per_rank[ids], 1, 2)], axis=-1)
  return interpolate(target.points, design.reshape(-1, k, 3 * design.shape[-1])).reshape(
      -1, 3, design.shape[-1])


def _coefficient_gram(tb: TrackingBasis) -> jnp.ndarray:
  """(C, C) the mean over the regularised vertices' P (S-1) coefficients of their squares as a
  quadratic form in c (the regions' coefficients k-major, then g): c' G c = mean of w(c)^2 at
  those vertices. Built from its blocks, without the (P (S-1), C) map itself."""
  a, phi = tb.regularized, tb.regions_regularized  # (P, S-1, R), (P, K)
  p, s, r = a.shape
  cross = jnp.einsum('pk,psr->ksr', phi, a).reshape(-1, r)
  gram = jnp.block([[jnp.kron(phi.T @ phi, jnp.eye(s, dtype=a.dtype)), cross],
                    [cross.T, jnp.einsum('psr,psq->rq', a, a)]])
  return gram / (p * s)


def _row_weights(targets, settings: SolverSettings):
  """{kind: (M,)} the data rows' weights: the term's weight over the visible count, times the
  visibility (a robust penalty acts through pseudo-observations, `solve_frame_linear`)."""
  weights = dict(settings.weights)
  out = {}
  for kind in sorted(targets):
    visible, = targets[kind].visible
    out[kind] = weights[kind] / jnp.maximum(jnp.sum(visible), 1.0) * visible
  return out


def _skinned(tb, raw, spec, target):
  """(M, 3) mm the jaw-skinned neutral at the target's surface points (no offsets)."""
  k = target.points.vertices.shape[1]
  x = _skinned_at(tb, model_lib.decode_transforms(raw, spec), target.points.vertices.reshape(-1))
  return interpolate(target.points, x.reshape(-1, k, 3))


def _skin_map(tb: TrackingBasis, target: TargetSet):
  """The jaw-skinned neutral at the target's M surface points is affine in the jaw's rotation
  and translation m = [R row by row (9), t (3)] (`geometry.skin`): (a (M, 3) mm, K (M, 3, 12)),
  skinned = a + K m."""
  k = target.points.vertices.shape[1]
  ids = target.points.vertices.reshape(-1)

  def skinned(m):
    return geometry.skin(tb.neutral[ids], tb.skinning[ids], m[:9].reshape(3, 3), m[9:],
                         tb.pivot)

  zero = jnp.zeros(12, tb.neutral.dtype)
  a, jacobian = skinned(zero), jax.jacfwd(skinned)(zero)  # Exact: skinning is affine in m.
  a = interpolate(target.points, a.reshape(-1, k, 3))
  jacobian = interpolate(target.points, jacobian.reshape(-1, k, 36)).reshape(-1, 3, 12)
  return a, jacobian


def _jaw_matrix(raw: jnp.ndarray, spec: model_lib.FitSpec) -> jnp.ndarray:
  """m = [R row by row, t] (12,) of F_T's raw jaw outputs."""
  frame = model_lib.decode_transforms(raw, spec)
  return jnp.concatenate([frame['jaw_rotation'].reshape(9), frame['jaw_translation']])


def data_gram(tb: TrackingBasis, target: TargetSet, rows: jnp.ndarray,
              design: jnp.ndarray) -> jnp.ndarray:
  """B' W B (C, C) of one target kind: design (M, 3, C) (`_design`), rows (M,) its weights.

  For points at vertices (dense targets) it is built from the design's structure: a point's
  row for region k and expression s is phi_k(c) e_s(c), so the regions' block is
  sum_m phi_mk phi_ml (e_ms . e_mt) w_m, which costs M K^2 S (one expression at a time) where
  the plain product costs 3 M (K S)^2: about 3x less (demo, 256 regions: 4.7 -> 1.5 s)."""
  if target.points.vertices.shape[1] != 1:
    return jnp.einsum('mdc,m,mde->ce', design, rows, design)
  ids = target.points.vertices[:, 0]
  w = rows * target.points.weights[:, 0] ** 2
  phi, deltas, per_rank = tb.regions[ids], tb.deltas[ids], tb.per_rank[ids]
  k, s, r = phi.shape[1], deltas.shape[1], per_rank.shape[1]
  products = jnp.einsum('msx,mtx->mst', deltas, deltas) * w[:, None, None]  # (M, S, S)

  def block(t):  # (K, S, K): [(k, s), (l, t)] for one t.
    return jnp.einsum('mks,ml->ksl', phi[:, :, None] * products[:, None, :, t], phi)

  regions = jnp.transpose(jax.lax.map(block, jnp.arange(s)), (1, 2, 3, 0)).reshape(k * s, -1)
  cross = jnp.einsum('mk,msr->ksr', phi,
                     jnp.einsum('msx,mrx->msr', deltas, per_rank) * w[:, None, None])
  ranks = jnp.einsum('mrx,m,mqx->rq', per_rank, w, per_rank)
  cross = cross.reshape(k * s, r)
  return jnp.block([[regions, cross], [cross.T, ranks]])


@functools.partial(jax.jit, static_argnames=('settings',))
def linear_data(tb: TrackingBasis, targets: Dict[str, TargetSet],
                settings: SolverSettings) -> Dict:
  """The part of `linear_setup` that does not depend on the regularisers' weights: the designs
  B (`_design`), the data rows' weights W, the skinning maps, B' W B (C, C) and B' W K (C, 12).
  Its cost is the data Gram matrix's (M x 3 x C^2), so a caller trying several weights of the
  coefficient magnitude or temporal terms on the same points computes it once."""
  designs = frame_designs(tb, targets)
  rows = _row_weights(targets, settings)
  skin = {kind: _skin_map(tb, targets[kind]) for kind in sorted(targets)}
  return {'designs': designs, 'rows': rows, 'skin': skin,
          'gram': sum(data_gram(tb, targets[k], rows[k], designs[k]) for k in designs),
          'coupling': sum(jnp.einsum('mdc,m,mde->ce', designs[k], rows[k], skin[k][1])
                          for k in designs)}


@functools.partial(jax.jit, static_argnames=('settings',))
def linear_setup(tb: TrackingBasis, targets: Dict[str, TargetSet],
                 settings: SolverSettings, data: Optional[Dict] = None) -> Dict:
  """What `solve_frame_linear` reuses across frames with the same points and visibility (with
  or without a robust penalty): everything of the frame's objective that does not depend on the
  observed values, in the reduced form of its docstring. `data` (`linear_data` of the same
  points, visibility and data weights) is computed when not given.

  With the data rows' weights W, the coefficient map B (3M x C, `_design`), the skinning's map
  a + K m (`_skin_map`) and the regularisers' matrix Rg (coefficient magnitude and temporal
  term over the regularised vertices, plus the damping toward the previous frame's
  coefficients): H = B' W B + Rg (its Cholesky factor), E = H^-1 B' W K (C x 12: how the
  optimal coefficients follow the jaw), D = W^1/2 (K - B E) (3M x 12: the data residual's
  change with the jaw once the coefficients follow it) and the 12 x 12 Q = D' D + E' Rg E.
  """
  weights = dict(settings.weights)
  if data is None:
    data = linear_data(tb, targets, settings)
  designs, rows = data['designs'], data['rows']
  gram = _coefficient_gram(tb)
  regularisers = (weights['coefficients'] + weights['temporal']) * gram
  # The rank components and the regions' deltas overlap, so H is near singular in float32: it
  # is damped relative to its diagonal, toward the previous frame's coefficients.
  damping = settings.damping * jnp.diag(regularisers + data['gram']) + 1e-9
  regularisers = regularisers + jnp.diag(damping)
  factor = jax.scipy.linalg.cho_factor(data['gram'] + regularisers)[0]
  follow = jax.scipy.linalg.cho_solve((factor, False), data['coupling'])  # E (C, 12)
  moved = {k: jnp.sqrt(rows[k])[:, None, None] * (data['skin'][k][1] - designs[k] @ follow)
           for k in designs}  # D per kind (M, 3, 12)
  regularised_follow = follow.T @ regularisers  # E' Rg (12, C)
  quadratic = (sum(jnp.einsum('mdi,mdj->ij', d, d) for d in moved.values())
               + regularised_follow @ follow)
  return {'designs': designs, 'rows': rows, 'skin': data['skin'], 'factor': factor,
          'follow': follow, 'moved': moved, 'quadratic': quadratic,
          # The pull toward the previous frame's coefficients: temporal term and damping (C, C).
          'pull': weights['temporal'] * gram + jnp.diag(damping),
          'moved_design': sum(jnp.einsum('mdi,m,mdc->ic', moved[k], jnp.sqrt(rows[k]),
                                         designs[k]) for k in designs),  # D' W^1/2 B (12, C)
          'regularised_follow': regularised_follow}


@functools.partial(jax.jit, static_argnames=('settings',))
def solve_frame_linear(u: jnp.ndarray, tb: TrackingBasis, targets: Dict[str, TargetSet],
                       settings: SolverSettings, setup: Optional[Dict] = None):
  """`solve_frame` for 3D targets without a head pose, by variable projection in closed form.

  Given the jaw, x = a + K m(raw) + B c is linear in the coefficient unknowns c (the regions'
  coefficients and g) and in the jaw matrix m (`_skin_map`), and the objective is quadratic in
  both. Its minimum over c is c(m) = c0 - E m, with c0 from one pass over the observed values
  (B' W y) and a factored solve, and what is left is a quadratic in the 12 numbers of m:
  J(m) = m' Q m + 2 l' m + const (`linear_setup`). Levenberg-Marquardt runs on the jaw's raw
  outputs alone (with the temporal term on them) against that quadratic, so its iterations cost
  nothing next to the one pass over the data, and the frame's cost grows with the points and
  unknowns only through B' W y. `setup` (`linear_setup`) is reused across frames with the same
  points and visibility.

  A robust penalty keeps the setup too: its M-estimate is reached by least squares on
  pseudo-observations (Huber's method), y* = x + rho'(|y - x|^2) (y - x) at the current
  solution x, solved again `settings.robust_iterations` times after a plain first solve. At a fixed
  point the least-squares stationarity, sum W B' (x - y*) = 0, is the robust objective's,
  sum W rho' B' (x - y) = 0, so the answer is the penalty's without refactoring H for new row
  weights (the IRLS alternative: a C x C factorisation, 1.7 s per frame with 128 regions).
  Returns (u, the objective at it), robust terms weighted at u as in `solve_frame`.
  """
  spec, weights = settings.spec, dict(settings.weights)
  n = spec.transform_outputs
  previous = u
  if setup is None:
    setup = linear_setup(tb, targets, settings)
  designs, rows, skin = setup['designs'], setup['rows'], setup['skin']
  pull = setup['pull'] @ previous[n:]
  quadratic = setup['quadratic']
  temporal = weights['temporal'] / n

  def solve(values):
    """u minimising the frame's least-squares objective for observed values {kind: (M, 3)}."""
    offset = {k: values[k] - skin[k][0] for k in designs}  # y - a (M, 3)
    # B' W (y - a): the one pass over the data (a matrix-vector product, no (M, 3, C) product).
    observed = sum((rows[k][:, None] * offset[k]).reshape(-1) @ designs[k].reshape(
        -1, designs[k].shape[-1]) for k in designs)
    c0 = jax.scipy.linalg.cho_solve((setup['factor'], False), pull + observed)
    # J(m) = |W^1/2 (B c0 - (y - a)) + D m|^2 + (c0 - E m)' Rg (c0 - E m) - 2 (c0 - E m)' pull.
    linear = (setup['moved_design'] @ c0
              - sum(jnp.einsum('mdi,m,md->i', setup['moved'][k], jnp.sqrt(rows[k]), offset[k])
                    for k in designs)
              - setup['regularised_follow'] @ c0 + setup['follow'].T @ pull)

    def objective(raw):
      m = _jaw_matrix(raw, spec)
      return (m @ quadratic @ m + 2.0 * linear @ m
              + temporal * jnp.sum((raw - previous[:n]) ** 2))

    def iteration(_, carry):
      raw, lm = carry
      m = _jaw_matrix(raw, spec)
      jacobian = jax.jacfwd(_jaw_matrix)(raw, spec)  # (12, n)
      gradient = jacobian.T @ (quadratic @ m + linear) + temporal * (raw - previous[:n])
      gram = jacobian.T @ quadratic @ jacobian + temporal * jnp.eye(n, dtype=raw.dtype)
      step = jnp.linalg.solve(gram + lm * jnp.diag(jnp.diag(gram) + 1e-9), -gradient)
      better = objective(raw + step) < objective(raw)
      return jnp.where(better, raw + step, raw), jnp.where(better, lm * 0.3, lm * 10.0)

    raw, _ = jax.lax.fori_loop(0, settings.iterations, iteration,
                               (previous[:n], jnp.asarray(settings.damping, u.dtype)))
    return jnp.concatenate([raw, c0 - setup['follow'] @ _jaw_matrix(raw, spec)])

  values = {k: targets[k].values[0] for k in designs}
  u = solve(values)
  if settings.robust != 'none':

    def reweighted(_, z):
      pseudo = {}
      for k in designs:
        x = _target_points(tb, z[:n], designs[k] @ z[n:], spec, targets[k])
        residual = values[k] - x
        robust = _robust_weight(jnp.sum(residual ** 2, axis=-1), settings.robust,
                                settings.robust_scale)
        pseudo[k] = x + robust[:, None] * residual
      return solve(pseudo)

    u = jax.lax.fori_loop(0, settings.robust_iterations, reweighted, u)
    robust_w = _robust_weights(u, tb, targets, settings)
  else:
    robust_w = {k: jnp.ones_like(r) for k, r in rows.items()}
  return u, jnp.sum(_residuals(u, tb, targets, previous, settings, robust_w) ** 2)


@functools.partial(jax.jit, static_argnames=('spec',))
def evaluate_unknowns(tb: TrackingBasis, unknowns: jnp.ndarray, spec: model_lib.FitSpec):
  """Tracked frames at every vertex: unknowns (F, n) -> 'frames' (F, V, 3) mm, the jaws (and
  head transforms)."""
  ids = jnp.arange(tb.neutral.shape[0])
  frames = jax.vmap(lambda u: frame_points(tb, u, spec, ids))(unknowns)
  transforms = jax.vmap(lambda u: split_unknowns(u, spec)[0])(unknowns)
  return {'frames': frames, **{k: v for k, v in transforms.items() if k != 'raw'}}


def subsample_targets(targets: Dict[str, TargetSet], count: int, seed: int = 0
                      ) -> Dict[str, TargetSet]:
  """Each target kind on at most `count` of its points (a fixed random subset, the same for
  every frame; 0: all): the per-frame solve's cost grows with the points, and a thousand dense
  points pin down its few hundred unknowns."""
  out = {}
  for i, (kind, t) in enumerate(sorted(targets.items())):
    if not count or t.points.count <= count:
      out[kind] = t
      continue
    index = np.sort(np.random.default_rng(seed + i).choice(t.points.count, count, replace=False))
    out[kind] = t.replace(points=t.points.replace(vertices=t.points.vertices[index],
                                                  weights=t.points.weights[index]),
                          values=t.values[:, index], visible=t.visible[:, index])
  return out


def solver_settings(config: ml_collections.ConfigDict, spec: model_lib.FitSpec
                    ) -> SolverSettings:
  """The per-frame solve's settings from a tracking config (`configs/track.py`): the batch
  fit's loss weights, with `tracking.coefficients` for the coefficient magnitude."""
  options = fit_lib.loss_options(config)
  weights = tuple((name, float(config.tracking.coefficients) if name == 'coefficients' else w)
                  for name, w in options.weights)
  return SolverSettings(spec=spec, weights=weights, robust=options.robust,
                        robust_scale=options.robust_scale,
                        iterations=int(config.tracking.iterations),
                        damping=float(config.tracking.damping),
                        robust_iterations=int(config.tracking.robust_iterations))


def check_settings(config: ml_collections.ConfigDict):
  """ValueError (one line) for tracking settings that cannot work (`configs/track.py`), before
  anything is loaded or written."""
  t = config.tracking
  for name in ('calibration_frames', 'iterations', 'dense_regions', 'regions',
               'landmark_regions', 'robust_iterations'):
    if int(t[name]) < 1:
      raise ValueError(f'tracking.{name} must be >= 1, got {t[name]}')
  if int(t.points) < 0:
    raise ValueError(f'tracking.points must be >= 0 (0: all), got {t.points}')
  if not float(t.coefficients) >= 0:
    raise ValueError(f'tracking.coefficients must be >= 0, got {t.coefficients}')
  if not float(t.damping) > 0:
    raise ValueError(f'tracking.damping must be > 0, got {t.damping}')
  if int(t.delay_frames) not in (0, 1):
    raise ValueError(f'tracking.delay_frames must be 0 or 1, got {t.delay_frames}')


def smooth_unknowns(unknowns: np.ndarray, before: np.ndarray, delay: int) -> np.ndarray:
  """The tracked frames' unknowns (F, N) as a preview `delay` frames behind shows them.

  delay 0: as solved. delay 1: frame j is shown once frame j + 1 is solved, as the centred
  (1, 2, 1) / 4 average of u_{j-1}, u_j, u_{j+1}: each lone solve fits part of its frame's
  noise, independently of its neighbours', and the average halves what is left of it at the
  cost of one frame of delay. `before` (N,) is the frame before the first (the calibration's
  last); the last frame, with no successor yet, is shown as solved.
  """
  if delay == 0 or len(unknowns) < 2:
    return unknowns
  padded = np.concatenate([np.asarray(before)[None], unknowns])
  smoothed = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
  return np.concatenate([smoothed, unknowns[-1:]])


def region_count(config: ml_collections.ConfigDict, targets) -> int:
  """The tracked frames' smooth regions: `tracking.dense_regions` when dense targets are
  tracked, `tracking.landmark_regions` for 2D landmarks alone (one camera's landmarks pin down
  fewer than 3D markers do, and their Levenberg-Marquardt solve grows with the square of the
  unknowns), else `tracking.regions` (sparse targets cannot pin down as many as dense ones)."""
  if 'dense' in targets:
    return int(config.tracking.dense_regions)
  if set(targets) == {'landmarks'}:
    return int(config.tracking.landmark_regions)
  return int(config.tracking.regions)


def track_sequence(config: ml_collections.ConfigDict, spec: model_lib.FitSpec,
                   basis: ModelBasis, targets: Dict[str, TargetSet],
                   log: Optional[Callable[[str], None]] = print,
                   topology=None, workdir: Optional[str] = None,
                   jaw=None) -> Dict[str, np.ndarray]:
  """Calibrates on the first `config.tracking.calibration_frames` frames (a batch fit, with its
  checkpoints in `workdir` when given, so a killed run resumes it), then solves every later
  frame alone, warm-started from the previous one.

  Returns 'frames' (F, V, 3) mm and 'jaw_rotation' (F, 3, 3), 'jaw_translation' (F, 3) mm
  (and head transforms with `model.head_pose`) of every frame, plus
  'latency_ms' (F,) the wall time of each tracked frame (its targets to the device, the solve,
  the code back; NaN for calibration frames; the solve is compiled before the first),
  'calibration_seconds', 'calibration_frames', 'compile_seconds' and 'delay_frames' (the
  tracked frames are as `smooth_unknowns` with `tracking.delay_frames` shows them).
  """
  num_frames = next(iter(targets.values())).num_frames
  count = int(config.tracking.calibration_frames)
  if not 1 <= count < num_frames:
    raise ValueError(f'tracking.calibration_frames must be in [1, {num_frames - 1}] for '
                     f'{num_frames} frames, got {count}')
  if config.loss.optimize_camera:
    raise ValueError('tracking does not refine the camera (loss.optimize_camera): fix the '
                     'camera, or fit in batch')
  settings = solver_settings(config, spec)
  # The calibration fit takes every batch term (`topology` for the coefficient field, `jaw`, a
  # `jaw_prior.JawModel`, for loss.jaw_blend); the per-frame solve keeps the data, magnitude
  # and temporal terms.
  calibration_targets = {k: t.frames(slice(0, count)) for k, t in targets.items()}
  source = fit_lib.fit_source(basis, topology, jaw, config, calibration_targets)
  start = time.perf_counter()
  calibration, _ = fit_lib.fit_frames(
      config, spec, source, calibration_targets, workdir=workdir, log=log)
  calibration_seconds = time.perf_counter() - start
  networks = jax.tree_util.tree_map(
      jnp.asarray, {k: v for k, v in calibration.items() if k != 'codes'})
  regions = region_count(config, targets)
  tb = tracking_basis(networks, basis, spec, int(config.loss.regularized_points), regions)
  cal = fit_lib.evaluate_frames(dict(networks, codes=jnp.asarray(calibration['codes'])), spec,
                                basis)
  u = unknowns_of(networks, jnp.asarray(calibration['codes'][-1]), spec, regions)
  solved = subsample_targets(targets, int(config.tracking.points), config.seed)
  # 3D targets without a head pose: variable projection (`solve_frame_linear`); else LM.
  linear = 'landmarks' not in targets and not spec.head_pose
  cache = {}  # The linear solve's setup, while the points' visibility stays the same.
  designs = None if linear else frame_designs(tb, solved)  # Fixed by the target points.
  frames_of = {k: np.asarray(t.values) for k, t in solved.items()}
  visible_of = {k: np.asarray(t.visible) for k, t in solved.items()}

  def solve(j, u):
    frame_targets = {k: t.replace(values=jnp.asarray(frames_of[k][j:j + 1]),
                                  visible=jnp.asarray(visible_of[k][j:j + 1]))
                     for k, t in solved.items()}
    if not linear:
      return solve_frame(u, tb, frame_targets, settings, designs)[0].block_until_ready()
    visible = tuple(visible_of[k][j].tobytes() for k in sorted(solved))
    if cache.get('visible') != visible:
      cache.update(visible=visible, setup=linear_setup(tb, frame_targets, settings))
    return solve_frame_linear(u, tb, frame_targets, settings,
                              cache['setup'])[0].block_until_ready()

  calibrated = u  # The calibration's last frame: the one before the first tracked frame.
  tick = time.perf_counter()
  solve(count, u)  # Compiles (the live loop starts warm).
  compile_seconds = time.perf_counter() - tick
  latency, tracked = [], []
  for j in range(count, num_frames):
    tick = time.perf_counter()
    u = solve(j, u)
    latency.append(1e3 * (time.perf_counter() - tick))
    tracked.append(u)
    if log and (j == count or (j + 1) % 100 == 0 or j + 1 == num_frames):
      log(f'tracked frame {j + 1}/{num_frames}: {latency[-1]:.1f} ms '
          f'(median {np.median(latency):.1f} ms so far)')
  delay = int(config.tracking.delay_frames)
  tracked = smooth_unknowns(np.stack(jax.device_get(tracked)), np.asarray(calibrated), delay)
  out = jax.device_get(evaluate_unknowns(tb, jnp.asarray(tracked), spec))
  result = {k: np.concatenate([np.asarray(cal[k]), np.asarray(out[k])])
            for k in out if k in cal}
  result['latency_ms'] = np.concatenate([np.full(count, np.nan), latency])
  result['calibration_seconds'] = np.asarray(calibration_seconds)
  result['calibration_frames'] = np.asarray(count)
  result['compile_seconds'] = np.asarray(compile_seconds)
  result['delay_frames'] = np.asarray(delay)
  return result
