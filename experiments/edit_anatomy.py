r"""Edits a learned AIM's anatomy or soft tissue and writes the edited model (aim_jax/edit.py).

  python experiments/edit_anatomy.py --model_dir=workdirs/demo --workdir=workdirs/edit_cheeks
  python experiments/edit_anatomy.py --model_dir=workdirs/demo --workdir=workdirs/edit_chin \
      --config.region.center_vertex=422 --config.region.radius_mm=8 \
      --config.region.falloff_mm=25 --config.thickness_scale=1 --config.bone_offset_mm=0,-6,3
  python experiments/edit_anatomy.py --model_dir=runs/actor --workdir=runs/actor_lips \
      --config.region.kind=mask --config.region.mask=lips.npy --config.thickness_scale=1.3

The edited workdir is a model directory (aim_jax/model_dir.py): fit_sequence.py and retarget.py
accept it.
"""

from absl import app, flags, logging

from aim_jax.runs import edit as edit_run
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/edit.py', 'Edit configuration file.')
_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'The model to edit (a model workdir).',
                                 required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the edited model goes (new).',
                               required=True)
_USD = flags.DEFINE_bool('usd', False, 'Also write the edited model as <workdir>/model.usdc '
                         '(docs/usd.md; needs usd-core).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with one_line_errors():
    edit_run.run_edit(_CONFIG.value, _MODEL_DIR.value, _WORKDIR.value,
                      log=lambda line: print(line, flush=True), usd=_USD.value)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
