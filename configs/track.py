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
  # global coefficient vector per frame). On the demo's dense sequence (20 calibration frames):
  # tracked error 0.177 mm with 1 region, 0.107 with 16, 0.094 with 32, 0.082-0.087 with 64
  # (the batch fit: 0.066 on the same frames); the cost grows with the square of the count.
  config.tracking.regions = 32
  config.tracking.points = 1024  # Target points per kind the solve uses (0: all).
  config.tracking.damping = 1e-3  # Initial damping, relative to the Gauss-Newton diagonal.
  return config
