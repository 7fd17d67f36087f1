"""Fitting in about 60 % of the default's time, closer to a converged fit.

Dense targets: 800 batch steps instead of 3,000, each chunk then finished frame by frame in
closed form (`fitting/refinement.py`, 192 regions), its strength chosen by held-out points.
3D markers alone: 1,500 steps at a peak learning rate of 2e-2. Landmarks: 800 steps.

Demo, held-out 100 frames (one run, README "Fitting speed"): dense noise-free 0.0393 mm at 0.25
s per frame (`configs/fit.py`: 0.0546 mm at 0.43 s; converged 0.0390), 150 markers 0.1328 mm at
0.26 s (0.1374 at 0.45 s; converged 0.1222). With 0.2 mm of noise on dense targets it is worse
than the default (0.096 against 0.059 mm): use it on clean dense data."""

from configs import fit


def get_config():
  config = fit.get_config()
  config.train.num_steps = 800
  config.refine.regions = 192
  config.train.marker_steps = 1500
  config.train.marker_learning_rate = 2e-2
  return config
