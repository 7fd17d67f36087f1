"""The README demo: the synthetic actor learned on a 2-core CPU in a few minutes.

Same model and losses as `learn.py`, smaller: ~4k vertices, hidden 128, full-batch steps.
"""

from configs import learn


def get_config():
  config = learn.get_config()
  config.actor.resolution = 64
  config.model.hidden = 128
  config.train.num_steps = 3000
  config.train.batch_size = 0
  config.train.constraint_batch = 0
  config.train.symmetry_batch = 1024
  config.train.log_every = 100
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  return config
