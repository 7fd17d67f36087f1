"""Global blendshapes (GBS): exact recovery of linear combinations."""

import numpy as np

from aim_jax import eval as eval_lib
from aim_jax.fitting import baselines, synthetic_targets
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim


def test_gbs_recovers_a_linear_combination_from_dense_and_markers(actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  rng = np.random.default_rng(0)
  weights = rng.uniform(0.0, 0.8, (4, actor.num_shapes - 1)).astype(np.float32)
  frames = baselines.gbs_frames(gbs, weights)
  dense = {'dense': targets_lib.dense_targets(frames)}
  # The jaw-open shapes are nearly collinear, so compare shapes rather than weights.
  fitted = baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, dense, ridge=1e-8))
  assert eval_lib.vertex_errors(fitted, frames).mean() < 0.01
  markers = {'markers': synthetic_targets.markers(actor.neutral, actor.faces, actor.region,
                                                  frames, count=120)}
  fitted = baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, markers, ridge=1e-8))
  assert eval_lib.vertex_errors(fitted, frames).mean() < 0.02


def test_gbs_gauss_newton_through_the_camera(actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  weights = np.full((2, actor.num_shapes - 1), 0.3, np.float32)
  frames = baselines.gbs_frames(gbs, weights)
  cam = synthetic_targets.frontal_camera(actor.neutral)
  targets = {'landmarks': synthetic_targets.landmarks(actor.neutral, actor.faces, actor.region,
                                                      frames, cam, count=300, noise_px=0.0)}
  fitted = baselines.gbs_frames(gbs, baselines.fit_gbs(gbs, targets, ridge=1e-8))
  assert eval_lib.vertex_errors(fitted, frames).mean() < 0.05
