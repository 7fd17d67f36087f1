r"""Fits a learned AIM (and the baselines) to a sequence of frames (supplementary Fig. 12).

  python experiments/fit_sequence.py --config=configs/fit.py --model_dir=workdirs/demo \
      --targets=synthetic --workdir=workdirs/demo_fit
  python experiments/fit_sequence.py --model_dir=runs/actor --targets=scans/ --units=cm \
      --workdir=runs/actor_fit --config.methods=aim
  python experiments/fit_sequence.py --model_dir=runs/actor --targets=markers.npz \
      --workdir=runs/markers --config.train.num_steps=4000

--targets is 'synthetic' (the synthetic actor's held-out performance; --config.synthetic.kind
picks dense, markers or landmarks), a folder of OBJ/PLY frames in the actor's topology, or an
npz (formats: aim_jax/fitting/io.py and the README). A rerun with the same workdir resumes.

With --distributed (experiments/distributed_flags.py) several processes fit one sequence: the
frames of each chunk are split over every process's devices and process 0 writes the outputs.
"""

import distributed_flags  # experiments/distributed_flags.py, beside this file.
from absl import app, flags, logging

from aim_jax import usd_export
from aim_jax.runs import fit as fit_run
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/fit.py', 'Fitting configuration file.')
_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'A learn_model.py workdir.', required=True)
_TARGETS = flags.DEFINE_string('targets', 'synthetic',
                               '"synthetic", a folder of OBJ/PLY frames, or an npz.')
_GROUND_TRUTH = flags.DEFINE_string('ground_truth', None,
                                    'Optional ground-truth frames (folder or npz).')
_UNITS = flags.DEFINE_enum('units', 'mm', ['mm', 'cm', 'm'], 'Units of a folder of frames.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where fits and reports go.', required=True)
_RESTART = flags.DEFINE_bool('restart', False, 'Start over in a workdir that holds a fit of '
                             'another model, other targets or another config: the old fit is '
                             'moved aside.')
_USD = flags.DEFINE_bool('usd', False, 'Also write each method\'s fit as '
                         '<workdir>/<method>/performance.usdc (docs/usd.md; needs usd-core).')
_USD_FPS = flags.DEFINE_float('usd_fps', usd_export.DEFAULT_FPS,
                              'Frames per second of the USD performance.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with one_line_errors():
    distributed_flags.initialize()
    fit_run.run_fit(_CONFIG.value, _MODEL_DIR.value, _TARGETS.value, _WORKDIR.value,
                    ground_truth=_GROUND_TRUTH.value, units=_UNITS.value,
                    log=lambda line: print(line, flush=True), restart=_RESTART.value,
                    usd_fps=_USD_FPS.value if _USD.value else None)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
