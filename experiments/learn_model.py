r"""Learns an actor's AIM model (supplementary Fig. 11) and evaluates it.

  python experiments/learn_model.py --config=configs/learn_demo.py --workdir=runs/demo
  python experiments/learn_model.py --config=configs/learn.py --actor=path/to/actor \
      --workdir=runs/actor --config.train.num_steps=20000

A rerun with the same workdir resumes from its last checkpoint.
"""

from absl import app, flags, logging

from aim_jax.data import load_actor_source
from aim_jax.runs import learn as learn_run
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/learn_demo.py', 'Learning configuration file.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where checkpoints and outputs go.',
                               required=True)
_ACTOR = flags.DEFINE_string('actor', 'synthetic', '"synthetic" or an actor folder.')
_RESTART = flags.DEFINE_bool('restart', False, 'Start over in a workdir that holds a run of '
                             'another actor or config: the old run is moved aside.')
_USD = flags.DEFINE_bool('usd', False, 'Also write the model as <workdir>/model.usdc '
                         '(docs/usd.md; needs usd-core).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  config = _CONFIG.value
  with one_line_errors():
    actor = load_actor_source(_ACTOR.value, config)
    learn_run.learn_and_evaluate(config, actor, _WORKDIR.value,
                                 log=lambda line: print(line, flush=True),
                                 restart=_RESTART.value, usd=_USD.value)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint step at INFO.
  run_main(main)
