r"""AIM, AIM-global, GBS and a generic linear 3DMM fitted to an ICT actor's held-out performance
(aim_jax/runs/compare_generic.py).

  python experiments/compare_generic.py --actor_dir=workdirs/ict0_actor \
      --model_dir=workdirs/ict0_model --ict_path=path/to/ict_facekit_light.npz \
      --workdir=workdirs/ict0_compare --config.generic.identity_components=20,50 \
      --config.num_markers=150

The model settings (target kinds, markers, the generic model's sizes and priors, and under
`config.fit` the fitting config) are in configs/compare_generic.py. Writes
`<workdir>/comparison.json`, `comparison.md` and `renders/comparison.png`. A rerun resumes the
AIM fits.
"""

from absl import app, flags, logging

from aim_jax.runs import compare_generic
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/compare_generic.py',
                             'Comparison configuration file.')
_ACTOR_DIR = flags.DEFINE_string('actor_dir', None, 'A prepared ICT actor folder.',
                                 required=True)
_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'A model directory of that actor.',
                                 required=True)
_ICT_PATH = flags.DEFINE_string('ict_path', None, 'ICT-FaceKit npz or FaceXModel folder.',
                                required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where fits and the comparison go.',
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with one_line_errors():
    compare_generic.run_compare_generic(_CONFIG.value, _ACTOR_DIR.value, _MODEL_DIR.value,
                                        _ICT_PATH.value, _WORKDIR.value,
                                        log=lambda line: print(line, flush=True))


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
