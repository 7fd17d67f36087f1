r"""Prepares an actor folder for learning: meshes, bones, constraints, bone report, renders.

  python experiments/prepare_actor.py --source=ict --out=actors/ict0 \
      --ict_path=path/to/ict_facekit_light.npz --skull_path=path/to/vkhUpperAirway \
      --identity_seed=0
  python experiments/prepare_actor.py --source=synthetic --out=actors/synthetic
  python experiments/prepare_actor.py --source=folder --folder=path/to/actor --out=actors/copy

Then: python experiments/learn_model.py --config=configs/learn.py --actor=actors/ict0 ...
"""

from absl import app, flags, logging

from aim_jax import prepare
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/ict_actor.py',
                             'Actor preparation configuration file.')
_SOURCE = flags.DEFINE_enum('source', 'ict', ['synthetic', 'ict', 'folder'], 'Actor source.')
_OUT = flags.DEFINE_string('out', None, 'The actor folder to write.', required=True)
_FOLDER = flags.DEFINE_string('folder', None, 'For --source=folder: the actor folder to read.')
_ICT_PATH = flags.DEFINE_string('ict_path', None, 'ICT-FaceKit npz or FaceXModel folder.')
_SKULL_PATH = flags.DEFINE_string('skull_path', None, 'ArtiSynth vkhUpperAirway folder.')
_SEED = flags.DEFINE_integer('identity_seed', None, 'ICT identity seed.')
_COEFFICIENTS = flags.DEFINE_string('identity_coefficients', None,
                                    'ICT identity coefficients, comma-separated.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  config = _CONFIG.value
  with config.unlocked():
    for key, flag in (('path', _ICT_PATH), ('identity_seed', _SEED),
                      ('identity_coefficients', _COEFFICIENTS)):
      if flag.value is not None:
        config.ict[key] = flag.value
    if _SKULL_PATH.value is not None:
      config.skull.path = _SKULL_PATH.value
  source = _SOURCE.value
  if source == 'folder':
    if not _FOLDER.value:
      raise app.UsageError('--source=folder needs --folder=PATH')
    source = 'folder:' + _FOLDER.value
  elif source == 'ict' and not (config.ict.path and config.skull.path):
    raise app.UsageError('--source=ict needs --ict_path and --skull_path')
  with one_line_errors():
    report = prepare.prepare_actor(source, _OUT.value, config,
                                   log=lambda line: print(line, flush=True))
  if 'after_warp' in report:
    fit = report['after_warp']
    print(f'bone fit: landmark depth mean abs error {fit["landmark_mean_abs_error_mm"]:.2f} mm, '
          f'bone outside the skin at {100 * fit["outside_fraction"]:.2f}% of checked vertices, '
          f'{report["seconds"]["total"]:.1f} s')
  print(f'wrote {_OUT.value}')


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
