"""Every ablation study end to end in a couple of minutes (CI; the numbers mean nothing)."""

from configs import ablate, fit_test, learn_test


def get_config():
  config = ablate.get_config()
  config.learn = learn_test.get_config()
  config.learn.train.num_steps = 30
  config.learn.train.checkpoint_every = 15
  config.fit = fit_test.get_config()
  config.fit.train.num_steps = 20
  config.fit.output.meshes = False
  config.fit.output.render = False
  config.eval_time_repeats = 2
  for study in ('activation', 'losses', 'baselines'):
    config.studies[study].num_frames = 4
    config.studies[study].seeds = 1
  config.studies.losses.num_frames = 3
  config.studies.losses.our_terms = False  # The paper's terms only (tests/test_ablation.py).
  config.studies.hidden.num_frames = 4
  config.studies.hidden.sizes = '16,32'
  return config
