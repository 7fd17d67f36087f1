"""Global blendshapes (GBS), the linear baseline of the main paper's Table 1.

x_j = s_0 + sum_i w_ij (s_i - s_0) with one coefficient vector per frame, fitted to the same
targets as AIM: linear least squares for 3D targets (one Gauss-Newton step is exact) and
Gauss-Newton through the camera projection for 2D landmarks; a small ridge keeps it well posed
under sparse constraints. Frames are independent and solved in one vmapped batch.
"""

from __future__ import annotations

import functools
from typing import Dict

import jax
import jax.numpy as jnp
import jax.scipy.linalg  # noqa: F401  (jax.scipy.linalg.solve_triangular)
import numpy as np

from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting.basis import ModelBasis
from aim_jax.fitting.targets import TargetSet, interpolate


def _frame_residual(w: jnp.ndarray, basis: ModelBasis, targets: Dict[str, TargetSet],
                    values: Dict[str, jnp.ndarray], visible: Dict[str, jnp.ndarray]
                    ) -> jnp.ndarray:
  """Stacked residuals (mm) of one frame's coefficients w (S-1,) against its target values."""
  parts = []
  for kind in sorted(targets):
    t = targets[kind]
    ids = t.points.vertices
    x = interpolate(t.points, basis.neutral[ids] + jnp.einsum('s,mksd->mkd', w,
                                                              basis.deltas[ids]))
    if kind == 'landmarks':
      cam = t.camera
      depth = x @ cam.rotation[2] + cam.translation[2]
      mm_per_px = jax.lax.stop_gradient(depth / cam.intrinsics[0, 0])
      r = (camera_lib.project(cam, x) - values[kind]) * mm_per_px[:, None]
    else:
      r = x - values[kind]
    parts.append((r * jnp.sqrt(visible[kind])[:, None]).reshape(-1))
  return jnp.concatenate(parts)


@functools.partial(jax.jit, static_argnames=('iterations',))
def _solve_frames(basis: ModelBasis, targets: Dict[str, TargetSet], ridge: jnp.ndarray,
                  iterations: int) -> jnp.ndarray:
  """Gauss-Newton on every frame (vmapped); compiled once per target shapes."""
  num_coefficients = basis.num_coefficients
  count = sum(t.points.count for t in targets.values())

  def solve_frame(values, visible):
    residual = lambda w: _frame_residual(w, basis, targets, values, visible)

    def body(w, _):
      # The Gauss-Newton step as a least-squares problem, [J / sqrt(n); sqrt(ridge) I] dw =
      # -[r / sqrt(n); sqrt(ridge) w], solved by QR: the normal equations square the condition
      # number, which float32 cannot afford when learning shapes are nearly collinear (the
      # jaw-open shapes are).
      r = residual(w)
      jac = jax.jacfwd(residual)(w)
      scale = jnp.sqrt(count).astype(jnp.float32)
      eye = jnp.sqrt(ridge) * jnp.eye(num_coefficients, dtype=jnp.float32)
      a = jnp.concatenate([jac / scale, eye])
      b = -jnp.concatenate([r / scale, eye @ w])
      q, upper = jnp.linalg.qr(a)
      return w + jax.scipy.linalg.solve_triangular(upper, q.T @ b), None
    w, _ = jax.lax.scan(body, jnp.zeros(num_coefficients, jnp.float32), None,
                        length=iterations)
    return w

  values = {k: t.values for k, t in targets.items()}
  visible = {k: t.visible for k, t in targets.items()}
  return jax.vmap(solve_frame)(values, visible)


def fit_gbs(basis: ModelBasis, targets: Dict[str, TargetSet], ridge: float = 1e-3,
            iterations: int = 10) -> np.ndarray:
  """GBS coefficients per frame by Gauss-Newton (exact in one step for 3D targets).

  Args:
    basis: a GBS basis (`basis.gbs_basis`): data neutral and deltas s_i - s_0.
    targets: {kind: TargetSet} over F frames.
    ridge: Tikhonov weight on the coefficients (mm^2 per unit^2), relative to the mean
      per-point residual.
    iterations: Gauss-Newton steps (1 suffices without landmarks).
  Returns:
    (F, S-1) coefficients.
  """
  iterations = iterations if 'landmarks' in targets else 1
  return np.asarray(_solve_frames(basis, targets, jnp.float32(ridge), iterations))


def gbs_frames(basis: ModelBasis, weights: np.ndarray) -> np.ndarray:
  """(F, S-1) coefficients -> (F, V, 3) mm frames."""
  return np.asarray(basis.neutral)[None] + np.einsum('fs,vsd->fvd', weights,
                                                     np.asarray(basis.deltas))
