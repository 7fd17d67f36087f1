"""End to end: the fit_sequence pipeline (aim_jax/runs/fit.py) on a tiny learned model for every
kind of target, and experiments/fit_sequence.py's one-line error on bad targets."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from aim_jax import model_dir
from aim_jax.data import synthetic
from aim_jax.fitting import methods
from aim_jax.runs import fit as fit_run
from aim_jax.runs import learn as learn_run
from configs import fit_test, learn_test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('model'))
  config = learn_test.get_config()
  learn_run.learn_and_evaluate(config, synthetic.make_synthetic_actor(resolution=24),
                               workdir, log=None)
  return workdir


@pytest.mark.parametrize('kind', ['dense', 'markers', 'landmarks'])
def test_fit_and_report_end_to_end(tmp_path, tiny_model, kind):
  config = fit_test.get_config()
  config.synthetic.kind = kind
  config.output.render = kind == 'dense'
  model = model_dir.load_fit_model(tiny_model)
  targets, truth = methods.synthetic_sequence_targets(config, model.actor)
  report = fit_run.fit_and_report(config, model, targets, truth, str(tmp_path), log=None)
  assert set(report['error_mm']) == {'aim', 'aim_global', 'gbs'}
  for method, s in report['error_mm'].items():
    assert np.isfinite(s['mean']) and s['mean'] < 20.0, (method, s)
  assert set(report['jaw']) == {'aim', 'aim_global'}
  written = json.loads((tmp_path / 'report.json').read_text())
  assert written['error_mm']['aim']['p95'] == pytest.approx(report['error_mm']['aim']['p95'])
  assert (tmp_path / 'per_frame.csv').read_text().count('\n') == config.synthetic.num_frames + 1
  assert (tmp_path / 'per_frame_error.png').exists()
  assert (tmp_path / 'aim' / 'meshes' / 'frame_0005.ply').exists()
  with np.load(tmp_path / 'aim' / 'fit.npz') as fit:
    assert fit['coefficients'].shape[:2] == (config.synthetic.num_frames,
                                             model.actor.num_vertices)
  if kind == 'dense':
    assert (tmp_path / 'renders' / 'error_maps.png').exists()


def test_cli_reports_bad_targets_in_one_line(tmp_path, tiny_model):
  run = subprocess.run(
      [sys.executable, os.path.join(REPO, 'experiments', 'fit_sequence.py'),
       f'--model_dir={tiny_model}', f'--targets={tmp_path / "nothing.npz"}',
       f'--workdir={tmp_path / "w"}', f'--config={os.path.join(REPO, "configs", "fit_test.py")}'],
      capture_output=True, text=True, cwd=REPO, timeout=300)
  assert run.returncode != 0
  assert 'nothing.npz: no such file' in run.stderr.strip().splitlines()[-1]
