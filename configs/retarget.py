"""Retargeting a performance from one actor's AIM to another's (experiments/retarget.py)."""

import ml_collections

from configs import fit


def get_config():
  config = ml_collections.ConfigDict()
  # Fitting the source model when no --source_fit is given (the 'aim' method only); its
  # `synthetic` block also names the synthetic recipe (--source_frames=synthetic).
  config.fit = fit.get_config()
  config.fit.methods = 'aim'
  config.jaw = ml_collections.ConfigDict()
  # The mapped jaw translation is the source's times this (1: the same slide in mm).
  config.jaw.translation_scale = 1.0
  config.output = ml_collections.ConfigDict()
  config.output.meshes = True
  config.output.mesh_format = 'ply'
  config.output.render = True
  config.output.view = 'three_quarter'
  config.output.strip_frames = 5     # Columns of renders/strip.png.
  config.output.video_frames = 50    # Frames of renders/retarget.gif (0: no video).
  config.output.video_fps = 10.0
  return config
