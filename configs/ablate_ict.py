"""The ablation studies on a prepared ICT-FaceKit actor (`--actor=<actor folder>` with its
performance.npz), sized for a 2-core CPU: `learn_ict.py` (jaw prior on) at 1,500 steps, one
seed. Run with `--study=activation,losses,baselines` (the hidden-size study works too, slowly)."""

from configs import ablate, learn_ict


def get_config():
  config = ablate.get_config()
  config.learn = learn_ict.get_config()
  config.learn.output.render = False
  config.learn.train.num_steps = 1500
  config.learn.train.eval_every = 500
  for study in ('activation', 'losses', 'hidden', 'baselines'):
    config.studies[study].seeds = 1
  config.fit.train.chunk_frames = 120
  return config
