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
  config.tracking.iterations = 10  # Levenberg-Marquardt iterations per tracked frame.
  config.tracking.damping = 1e-3  # Initial damping, relative to the Gauss-Newton diagonal.
  return config
