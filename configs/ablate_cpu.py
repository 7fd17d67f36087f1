"""The ablation studies sized for a 2-core CPU in about an hour and a half (the README's
numbers): the synthetic actor at ~2.4k vertices and 2,000 learning steps per variant; fitting
as in `fit.py`. `ablate.py` is the full size (~4k vertices, 3,000 steps)."""

from configs import ablate


def get_config():
  config = ablate.get_config()
  config.learn.actor.resolution = 48
  config.learn.train.num_steps = 2000
  config.learn.train.eval_every = 1000
  # The paper's 512 takes ~16x the compute of 128 (about half an hour here); 32 added instead.
  config.studies.hidden.sizes = '32,64,128,256'
  return config
