"""A tiny fitting run for the tests: seconds on a CPU, numbers not meaningful."""

from configs import fit


def get_config():
  config = fit.get_config()
  config.model.code_dim = 8
  config.model.hidden = 16
  config.model.depth = 2
  config.model.rank = 8
  config.train.num_steps = 40
  config.train.warmup_steps = 5
  config.train.points_per_step = 128
  config.synthetic.num_frames = 6
  config.synthetic.num_markers = 40
  config.synthetic.num_landmarks = 200
  config.train.log_every = 10
  config.train.checkpoint_every = 20
  config.output.render_frames = 2
  return config
