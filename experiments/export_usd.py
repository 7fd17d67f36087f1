r"""Exports a learned model or a fitted performance as USD (aim_jax/usd_export.py, docs/usd.md).

  python experiments/export_usd.py --model_dir=workdirs/demo --out=demo.usdc
  python experiments/export_usd.py --fit_dir=workdirs/fit_dense --model_dir=workdirs/demo \
      --method=aim --ground_truth=synthetic --out=fit_dense.usdc
  python experiments/export_usd.py --fit_dir=workdirs/retarget_demo_to_synth3 --out=retarget.usda

--fit_dir is a fit_sequence.py workdir (<method>/fit.npz), a retarget.py workdir
(target_performance.npz; its report names the model) or an npz with `frames`. A .usda output is
text, .usdc (or .usd) binary. --render also writes a PNG of the written file read back.
Needs usd-core: pip install -e '.[usd]'.
"""

from absl import app, flags, logging

from aim_jax import usd_export
from aim_jax.runs import export_usd
from aim_jax.runs.errors import one_line_errors, run_main

_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'A model directory (learned or edited): '
                                 'exported alone, or the model of --fit_dir.')
_FIT_DIR = flags.DEFINE_string('fit_dir', None, 'A performance: fit_sequence.py or retarget.py '
                               'workdir, or an npz with frames.')
_METHOD = flags.DEFINE_string('method', 'aim', 'The fitted method to export (aim, aim_global, '
                              'gbs; aim or delta_transfer for a retargeting workdir).')
_GROUND_TRUTH = flags.DEFINE_string('ground_truth', None, 'Ground truth of the performance '
                                    '(error primvars): "synthetic", a folder or an npz.')
_FPS = flags.DEFINE_float('fps', usd_export.DEFAULT_FPS, 'Frames per second of a performance.')
_SHAPES_PER_SECOND = flags.DEFINE_float('shapes_per_second', usd_export.SHAPES_PER_SECOND,
                                        'Playback rate of a model\'s learning-shape preview.')
_OUT = flags.DEFINE_string('out', None, 'The .usdc / .usda / .usd file.', required=True)
_RENDER = flags.DEFINE_string('render', None, 'Optional PNG of the written file, read back.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  say = lambda line: print(line, flush=True)
  with one_line_errors():
    if _FIT_DIR.value:
      export_usd.export_performance(_FIT_DIR.value, _OUT.value, _METHOD.value, _MODEL_DIR.value,
                                    _GROUND_TRUTH.value, _FPS.value, log=say)
    elif _MODEL_DIR.value:
      export_usd.export_model(_MODEL_DIR.value, _OUT.value, _SHAPES_PER_SECOND.value, log=say)
    else:
      raise ValueError('give --model_dir (a model) or --fit_dir (a performance)')
    if _RENDER.value:
      say(f'wrote {export_usd.render_file(_OUT.value, _RENDER.value)}')


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
