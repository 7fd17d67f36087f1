r"""Retargets a performance from a source actor's AIM to a target actor's (aim_jax/retarget.py,
aim_jax/runs/retarget.py).

  # Fit the source model to its synthetic performance, retarget, compare with the same recipe
  # played on the target actor:
  python experiments/retarget.py --source_model=workdirs/demo \
      --target_model=workdirs/retarget_synth3_model --source_frames=synthetic \
      --workdir=workdirs/retarget_demo_to_synth3
  # Reuse a fit_sequence.py workdir of the source model:
  python experiments/retarget.py --source_model=workdirs/demo --source_fit=workdirs/fit_dense \
      --source_frames=synthetic --target_model=workdirs/edit_cheeks --workdir=workdirs/retarget_x
  # Frames as files, with the target's ground truth:
  python experiments/retarget.py --source_model=runs/ict0 --target_model=runs/ict1 \
      --source_frames=actors/ict0/performance.npz \
      --ground_truth=actors/ict1/performance.npz --workdir=runs/ict0_to_ict1

Writes target_performance.npz (AIM and delta-transfer frames, mapped jaw), target_jaw.npz,
meshes/, report.json (errors against ground truth when known), per_frame.csv,
renders/strip.png and renders/retarget.gif.
"""

from absl import app, flags, logging

from aim_jax.runs import retarget as retarget_run
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/retarget.py', 'Retargeting configuration file.')
_SOURCE_MODEL = flags.DEFINE_string('source_model', None, 'The source actor\'s model workdir.',
                                    required=True)
_TARGET_MODEL = flags.DEFINE_string('target_model', None, 'The target actor\'s model workdir.',
                                    required=True)
_SOURCE_FIT = flags.DEFINE_string('source_fit', None,
                                  'A fit_sequence.py workdir of the source model (reused).')
_SOURCE_FRAMES = flags.DEFINE_string(
    'source_frames', None, '"synthetic", a folder of OBJ/PLY frames or an npz: fitted when '
    'there is no --source_fit, and the delta-transfer source.')
_GROUND_TRUTH = flags.DEFINE_string(
    'ground_truth', 'auto', '"auto" (synthetic pairs: the same recipe on the target), "none", '
    'or target frames (folder or npz with frames, optionally jaw_rotation / jaw_translation).')
_UNITS = flags.DEFINE_enum('units', 'mm', ['mm', 'cm', 'm'], 'Units of a folder of frames.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where outputs go.', required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with one_line_errors():
    retarget_run.run_retarget(_CONFIG.value, _SOURCE_MODEL.value, _TARGET_MODEL.value,
                              _WORKDIR.value, source_fit=_SOURCE_FIT.value,
                              source_frames=_SOURCE_FRAMES.value,
                              ground_truth=_GROUND_TRUTH.value, units=_UNITS.value,
                              log=lambda line: print(line, flush=True))


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
