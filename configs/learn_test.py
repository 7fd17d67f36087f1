"""A tiny learning run for the tests: seconds on a CPU, numbers not meaningful."""

from configs import learn


def get_config():
  config = learn.get_config()
  config.actor.resolution = 24
  config.model.hidden = 32
  config.model.depth = 2
  config.train.num_steps = 60
  config.train.warmup_steps = 5
  config.train.batch_size = 256
  config.train.constraint_batch = 128
  config.train.symmetry_batch = 64
  config.train.log_every = 10
  config.train.eval_every = 30
  config.train.checkpoint_every = 20
  config.output.render = False
  return config
