r"""Opens a learned model, and optionally a fit or a retargeting of it, in a browser (viser).

  python experiments/view.py --model_dir=workdirs/demo
  python experiments/view.py --model_dir=workdirs/demo --fit_dir=workdirs/fit_dense --port=8080
  python experiments/view.py --model_dir=workdirs/retarget_synth3_model \
      --fit_dir=workdirs/retarget_demo_to_synth3
  python experiments/view.py --model_dir=workdirs/demo --fit_dir=workdirs/fit_dense \
      --screenshot=docs/images/viewer.png --frame=40     # headless Chromium, then exits

Serves on localhost and prints the address to open. --fit_dir is a fit_sequence.py workdir
(every method in it side by side) or a retarget.py workdir; a fit or retargeting of an edited
model is shown with the edited model's directory. Controls: docs/viewer.md.
"""

from absl import app, flags, logging

from aim_jax import viewer
from aim_jax.runs.errors import one_line_errors, run_main
from aim_jax.viewer import scene

_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'A model directory (learned or edited).',
                                 required=True)
_FIT_DIR = flags.DEFINE_string('fit_dir', None, 'A fit_sequence.py or retarget.py workdir.')
_GROUND_TRUTH = flags.DEFINE_string('ground_truth', 'auto', 'For the error colours: "auto" '
                                    '(the synthetic performance when the run\'s records say it '
                                    'was of it), "synthetic" (the one its report.json names, '
                                    'unchecked), "none", or frames (npz or a folder of meshes).')
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'Address to serve on (0.0.0.0: every '
                            'interface).')
_PORT = flags.DEFINE_integer('port', 8080, 'Port (the next free one when taken).')
_COLOR = flags.DEFINE_enum('color', 'thickness', list(scene.COLOR_MODES),
                           'Initial colour of the neutral and the anatomy surface.')
_SCREENSHOT = flags.DEFINE_string('screenshot', None, 'Write a PNG of the viewer (headless '
                                  'Chromium, scripts/install_browser.sh) and exit.')
_ENVIRONMENT = flags.DEFINE_bool('environment', True, "viser's image-based lighting (off: "
                                  'default lights only, faster in a software-WebGL browser).')
_OPACITY = flags.DEFINE_float('opacity', 1.0, 'Initial skin opacity (below 1 the bones show '
                               'through).')
_FRAME = flags.DEFINE_integer('frame', 0, 'The frame shown first (and in --screenshot).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    viewer.require_viser()
  except viewer.ViserMissing as err:
    raise SystemExit(f'error: {err}') from None
  from aim_jax.viewer import app as viewer_app
  from aim_jax.viewer import browser
  say = lambda line: print(line, flush=True)
  with one_line_errors():
    view = viewer_app.open_viewer(_MODEL_DIR.value, _FIT_DIR.value, _GROUND_TRUTH.value,
                                  _HOST.value, _PORT.value, _COLOR.value, _ENVIRONMENT.value,
                                  say)
  view.gui['opacity'].value = _OPACITY.value
  if view.performance is not None:
    view.gui['frame'].value = _FRAME.value
  if not _SCREENSHOT.value:
    viewer_app.serve_forever(view, say)
    return
  try:
    viewer_app.screenshot(view, _SCREENSHOT.value, _FRAME.value)
  except browser.BrowserError as err:
    raise SystemExit(f'error: {err}') from None
  finally:
    viewer_app.close(view)
  say(f'wrote {_SCREENSHOT.value}')


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
