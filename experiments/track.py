r"""Live tracking: a calibration segment fitted in batch, then every frame solved on its own.

  python experiments/track.py --model_dir=workdirs/demo --targets=synthetic \
      --workdir=workdirs/demo_track --batch_fit=workdirs/fit_dense
  python experiments/track.py --model_dir=workdirs/demo --targets=synthetic \
      --config.synthetic.kind=markers --workdir=workdirs/demo_track_markers

--targets as for fit_sequence.py (synthetic, a folder of frames, or an npz). --batch_fit (a
fit_sequence.py workdir of the same targets) puts the batch fit's error beside the tracked one.
Writes track.npz (frames, jaws, per-frame latency) and report.json.
"""

from absl import app, flags, logging

from aim_jax.runs import track as track_run
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/track.py', 'Tracking configuration file.')
_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'A learn_model.py workdir.', required=True)
_TARGETS = flags.DEFINE_string('targets', 'synthetic',
                               '"synthetic", a folder of OBJ/PLY frames, or an npz.')
_GROUND_TRUTH = flags.DEFINE_string('ground_truth', None,
                                    'Optional ground-truth frames (folder or npz).')
_UNITS = flags.DEFINE_enum('units', 'mm', ['mm', 'cm', 'm'], 'Units of a folder of frames.')
_BATCH_FIT = flags.DEFINE_string('batch_fit', None, 'A fit_sequence.py workdir (or its '
                                 'aim/fit.npz) of the same targets, to compare with.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the tracked frames go.', required=True)
_RESTART = flags.DEFINE_bool('restart', False, 'Start over in a workdir that holds another run.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with one_line_errors():
    track_run.run_track(_CONFIG.value, _MODEL_DIR.value, _TARGETS.value, _WORKDIR.value,
                        ground_truth=_GROUND_TRUTH.value, units=_UNITS.value,
                        batch_fit=_BATCH_FIT.value, log=lambda line: print(line, flush=True),
                        restart=_RESTART.value)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
