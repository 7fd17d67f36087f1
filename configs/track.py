"""Live tracking (`experiments/track.py`): the batch fit's settings (`configs/fit.py`) for the
calibration segment, then every later frame solved alone (`aim_jax/fitting/tracking.py`).

A config of its own, so that `configs/fit.py` (and every fit workdir's identity) is unchanged.
"""

import ml_collections

from configs import fit


def get_config():
  config = fit.get_config()
  config.methods = 'aim'
  config.tracking = ml_collections.ConfigDict()
  # Frames fitted in batch first (F_T and F_W learned on them, then frozen).
  config.tracking.calibration_frames = 20
  config.tracking.iterations = 6  # Levenberg-Marquardt iterations per tracked frame.
  # Smooth template regions with coefficients of their own in every tracked frame (1: one
  # global coefficient vector per frame), with dense targets and otherwise. Demo sequence (seed
  # 1), 20 calibration frames, every point, against the batch fit on the same frames: dense
  # 32 / 64 / 128 regions 1.37 / 1.11 / 0.85x (tracker coefficient weight 1e-4); 150 markers
  # 8 / 16 / 32 regions 1.63 / 1.70 / 2.2x at 1e-4, 32 regions 1.08x at 0.1. A frame's solve
  # costs one pass over points x 3 x (regions x (S-1) + rank) numbers (README, "Live tracking").
  config.tracking.dense_regions = 128
  config.tracking.regions = 32
  # 2D landmarks alone (1,000 landmarks, 1 px, demo seeds 1 / 2, tracked / batch fit): 4 / 8 /
  # 16 / 32 regions 1.19 / 1.09 / 1.29 / 1.38x and 1.35 / 1.30 / 1.39 / 1.36x (27-38 ms per frame
  # at 8 regions, 77 at 16, ~200 at 32); 1 region 2.27x on seed 2.
  config.tracking.landmark_regions = 8
  # The calibration's step budget with 2D landmarks alone (configs/fit.py's is 2,000): a short
  # segment fitted longer matches the image better and the depth worse, and the tracked frames
  # inherit its frozen F_W. Demo seeds 1 / 2 / 3, 20 calibration frames, tracked / batch fit
  # at 500 / 1,000 / 2,000 steps: 1.14 / 1.17 / 1.33x, 1.00 / 0.99 / 1.06x and 1.18 / 1.28 /
  # 1.41x (1,000 was chosen on seeds 1 and 2, and missed on seed 3; README).
  config.train.landmark_steps = 500
  config.tracking.points = 0  # Target points per kind the solve uses (0: all).
  # The coefficient-magnitude weight of a tracked frame's own solve (the batch fit's is
  # loss.coefficients, 1e-4): a lone frame has no network and no other frames to hold its
  # regions' coefficients. Demo, 150 markers, 32 regions: 1e-4 / 1e-1 / 3e-1 -> 2.2 / 1.08 /
  # 1.12x the batch fit; dense, 128 regions: 0.85 / 1.01x (1e-4 / 1e-1), with 0.2 mm of noise
  # 1.75 / 1.37x.
  config.tracking.coefficients = 0.1
  config.tracking.damping = 1e-3  # Initial damping, relative to the Gauss-Newton diagonal.
  # With loss.robust and 3D targets: least-squares solves on pseudo-observations after the plain
  # one (`tracking.solve_frame_linear`); each is two passes over the points' design.
  config.tracking.robust_iterations = 3
  # Frames a live preview shows each tracked frame behind (0 or 1): with 1, frame j is shown
  # once frame j + 1 is solved, as the (1, 2, 1) / 4 average of its solve and its neighbours'
  # (`tracking.smooth_unknowns`), which halves what is left of each lone solve's noise. Demo
  # seed 2 with 0.2 mm of noise, tracked / batch fit, delay 0 / 1: 1.33 / 1.16x (held-out noise
  # seeds 1 / 3: 1.36 / 1.17x, 1.44 / 1.27x); noise-free dense seeds 1 / 2: 0.98 / 1.04x and
  # 0.90 / 0.96x; 150 markers 1.08 / 1.09x, 1.05 / 1.07x (benchmarks/results/tracking_delay.json).
  config.tracking.delay_frames = 1
  return config
