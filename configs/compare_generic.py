"""AIM, AIM-global and GBS against a generic linear 3DMM on an ICT actor's held-out performance
(experiments/compare_generic.py)."""

import ml_collections

from configs import fit


def get_config():
  config = ml_collections.ConfigDict()
  # Fitting AIM, AIM-global and GBS (config.fit.methods) to each target kind.
  config.fit = fit.get_config()
  config.kinds = 'dense,markers'       # Target kinds compared (comma separated).
  config.num_markers = 150             # Sparse 3D markers.
  config.marker_seed = 0               # Seed of the marker placement.
  config.generic = ml_collections.ConfigDict()
  config.generic.identity_components = '20,50'  # Identity modes K of each generic model.
  config.generic.identity_prior = 1e-4    # Weight of |a|^2 (mm^2 per unit^2).
  config.generic.expression_ridge = 1e-4  # Weight of |b_j|^2 (mm^2 per unit^2).
  config.render_frame = -1             # Frame rendered (-1: the one farthest from the neutral).
  return config
