"""End to end: performance retargeting (aim_jax/runs/retarget.py) between two tiny model workdirs,
and what it refuses, through experiments/retarget.py too."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tiny_models import make_model_workdir

from aim_jax import retarget
from aim_jax.data import synthetic, synthetic_performance
from aim_jax.runs import retarget as retarget_run
from configs import retarget_test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def model_dirs(tmp_path_factory):
  root = tmp_path_factory.mktemp('models')
  return (make_model_workdir(str(root / 'source'), seed=0),
          make_model_workdir(str(root / 'target'), seed=3))


def test_retarget_end_to_end_on_a_tiny_synthetic_pair(tmp_path, model_dirs):
  source_dir, target_dir = model_dirs
  config = retarget_test.get_config()
  workdir = str(tmp_path / 'out')
  report = retarget_run.run_retarget(config, source_dir, target_dir, workdir,
                                     source_frames='synthetic', log=None)
  num_frames = config.fit.synthetic.num_frames
  assert report['num_frames'] == num_frames
  assert set(report['error_mm']) == {'aim', 'delta_transfer'}
  assert np.isfinite(report['error_mm']['aim']['mean'])
  assert 'rotation_deg' in report['jaw']['aim']
  assert np.isfinite(report['source_fit_error_mm']['mean'])
  for name in ('report.json', 'per_frame.csv', 'target_performance.npz', 'target_jaw.npz',
               'renders/strip.png', 'renders/retarget.gif', 'meshes/frame_0000.ply',
               'source_fit/aim/fit.npz'):
    assert os.path.exists(os.path.join(workdir, name)), name
  with np.load(os.path.join(workdir, 'target_performance.npz')) as data:
    assert data['frames'].shape == (num_frames, target_vertices(), 3)
    assert data['jaw_rotation'].shape == (num_frames, 3, 3)
  # The ground truth is the same recipe played on the target actor.
  target = synthetic.make_synthetic_actor(24, 3)
  truth = synthetic_performance.make_performance(target, num_frames, config.fit.synthetic.seed)
  with np.load(os.path.join(workdir, 'target_performance.npz')) as data:
    error = np.linalg.norm(data['delta_transfer_frames'] - truth.frames, axis=-1)
  assert error.mean() == pytest.approx(report['error_mm']['delta_transfer']['mean'], rel=1e-4)

  # Reusing the fit, with the source frames and the target's ground truth as files, gives the
  # same target performance and errors.
  source = synthetic.make_synthetic_actor(24, 0)
  source_performance = synthetic_performance.make_performance(source, num_frames,
                                                               config.fit.synthetic.seed)
  np.savez(tmp_path / 'source.npz', frames=source_performance.frames / 10.0, units='cm')
  np.savez(tmp_path / 'truth.npz', frames=truth.frames, jaw_rotation=truth.jaw_rotation,
           jaw_translation=truth.jaw_translation)
  again = retarget_run.run_retarget(config, source_dir, target_dir, str(tmp_path / 'again'),
                                    source_fit=os.path.join(workdir, 'source_fit'),
                                    source_frames=str(tmp_path / 'source.npz'),
                                    ground_truth=str(tmp_path / 'truth.npz'), log=None)
  for method in ('aim', 'delta_transfer'):
    assert again['error_mm'][method]['mean'] == pytest.approx(
        report['error_mm'][method]['mean'], rel=1e-4)
  assert again['source_fit_error_mm']['mean'] == pytest.approx(
      report['source_fit_error_mm']['mean'], rel=1e-4)
  assert again['jaw']['aim']['rotation_deg']['mean'] == pytest.approx(
      report['jaw']['aim']['rotation_deg']['mean'], rel=1e-4)


def target_vertices():
  return synthetic.make_synthetic_actor(24, 3).num_vertices


def test_retarget_refuses_mismatched_models_and_missing_fits(tmp_path, model_dirs):
  source_dir, target_dir = model_dirs
  other = str(tmp_path / 'other')
  shutil.copytree(target_dir, other)
  info = json.loads(open(os.path.join(other, 'model.json')).read())
  info['actor']['num_vertices'] += 1
  with open(os.path.join(other, 'model.json'), 'w') as f:
    json.dump(info, f)
  config = retarget_test.get_config()
  with pytest.raises(retarget.RetargetError, match='one topology'):
    retarget_run.run_retarget(config, source_dir, other, str(tmp_path / 'x'),
                              source_frames='synthetic', log=None)
  info['actor']['num_vertices'] -= 1
  info['actor']['shape_names'] = info['actor']['shape_names'][::-1]
  with open(os.path.join(other, 'model.json'), 'w') as f:
    json.dump(info, f)
  with pytest.raises(retarget.RetargetError, match='learning shapes'):
    retarget_run.run_retarget(config, source_dir, other, str(tmp_path / 'x'),
                              source_frames='synthetic', log=None)
  result = subprocess.run(
      [sys.executable, 'experiments/retarget.py', f'--source_model={source_dir}',
       f'--target_model={target_dir}', f'--source_fit={tmp_path}/nofit',
       f'--workdir={tmp_path}/y', '--config=configs/retarget_test.py'],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  line = result.stderr.strip().splitlines()[-1]
  assert line.startswith('error: ') and 'nofit' in line and 'fit.npz' in line
