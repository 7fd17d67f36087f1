"""Fault injection: every refused, failed or diverging run ends in one clear error, and no file
already written is changed (checked by hashing every file before and after).

Table-driven over the classes of faults: identity mismatch, divergence, locks, corrupt
checkpoints, implausible inputs, bad settings; and, through the command line, one-line errors.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import damage_checkpoint, file_hashes, with_overrides

from aim_jax import train_loop
from aim_jax import workdir as workdir_lib
from aim_jax.data import synthetic
from aim_jax.data.actor import Mesh
from aim_jax.fitting.io import TargetError
from aim_jax.runs import fit as fit_run
from aim_jax.runs import learn as learn_run
from configs import fit_test, learn_test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def learn_config(**overrides):
  config = learn_test.get_config()
  config.train.num_steps = 40
  return with_overrides(config, **overrides)


@pytest.fixture(scope='module')
def learned(tmp_path_factory):
  """A finished tiny learning workdir and its actor."""
  folder = str(tmp_path_factory.mktemp('faults') / 'model')
  actor = synthetic.make_synthetic_actor(resolution=24)
  learn_run.learn_and_evaluate(learn_config(), actor, folder, log=None)
  return folder, actor


@pytest.fixture()
def model_copy(learned, tmp_path):
  folder = str(tmp_path / 'model')
  shutil.copytree(learned[0], folder)
  return folder, learned[1]


LEARNING_FAULTS = {
    # name: (config overrides, actor change, expected error, message)
    'diverging learning rate on resume': (
        {'train.learning_rate': 1e6, 'train.num_steps': 80}, None, workdir_lib.WorkdirError,
        'other config.train.learning_rate'),
    'another actor': ({}, 'seed3', workdir_lib.WorkdirError, 'other actor'),
    'changed architecture': ({'model.hidden': 64}, None, workdir_lib.WorkdirError,
                             'other config.model.hidden'),
    'changed constraint settings': ({'constraints.source_fraction': 0.5}, None,
                                    workdir_lib.WorkdirError,
                                    'other config.constraints.source_fraction'),
    'zero steps': ({'train.num_steps': 0}, None, ValueError, 'train.num_steps must be'),
    'zero log interval': ({'train.log_every': 0}, None, ValueError, 'train.log_every must be'),
    'zero checkpoint interval': ({'train.checkpoint_every': 0}, None, ValueError,
                                 'train.checkpoint_every must be'),
    'negative batch': ({'train.batch_size': -4}, None, ValueError, 'train.batch_size must be'),
    'unknown activation': ({'model.activation': 'swish'}, None, ValueError, 'swish'),
}


@pytest.mark.parametrize('name', sorted(LEARNING_FAULTS))
def test_refused_learning_changes_nothing(model_copy, name):
  folder, actor = model_copy
  overrides, actor_change, error, message = LEARNING_FAULTS[name]
  if actor_change == 'seed3':
    actor = synthetic.make_synthetic_actor(resolution=24, seed=3)
  before = file_hashes(folder)
  with pytest.raises(error, match=message):
    learn_run.learn_and_evaluate(learn_config(**overrides), actor, folder, log=None)
  assert file_hashes(folder) == before


def test_restart_moves_the_old_run_aside_and_divergence_writes_nothing(model_copy):
  folder, actor = model_copy
  before = file_hashes(folder)
  lines = []
  with pytest.raises(train_loop.Diverged, match='non-finite'):
    learn_run.learn_and_evaluate(learn_config(**{'train.learning_rate': 1e6}), actor, folder,
                                 log=lines.append, restart=True)
  aside = [p for p in os.listdir(os.path.dirname(folder)) if p.startswith('model.replaced-')]
  assert len(aside) == 1
  assert file_hashes(os.path.join(os.path.dirname(folder), aside[0])) == before
  left = os.listdir(folder)
  assert 'model.json' not in left and 'summary.json' not in left, left
  assert not os.listdir(os.path.join(folder, 'checkpoints'))  # No non-finite checkpoint.


def test_edited_model_refuses_learning(model_copy):
  folder, actor = model_copy
  with open(os.path.join(folder, 'model.json')) as f:
    info = json.load(f)
  info['edit'] = {'file': 'edit.npz', 'description': 'test'}
  with open(os.path.join(folder, 'model.json'), 'w') as f:
    json.dump(info, f)
  before = file_hashes(folder)
  with pytest.raises(workdir_lib.WorkdirError, match='edited model'):
    learn_run.learn_and_evaluate(learn_config(), actor, folder, log=None)
  assert file_hashes(folder) == before


def test_a_busy_workdir_is_refused_with_the_pid(model_copy):
  folder, actor = model_copy
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    with open(os.path.join(folder, workdir_lib.LOCK), 'w') as f:
      json.dump({'pid': holder.pid, 'host': __import__('socket').gethostname(),
                 'command': 'learn_model.py'}, f)
    before = file_hashes(folder)
    with pytest.raises(workdir_lib.WorkdirError, match=f'in use by process {holder.pid}'):
      learn_run.learn_and_evaluate(learn_config(), actor, folder, log=None)
    assert file_hashes(folder) == before
  finally:
    holder.kill()
    holder.wait()


def test_corrupt_newest_checkpoint_falls_back_and_training_goes_on(model_copy):
  folder, actor = model_copy
  assert damage_checkpoint(os.path.join(folder, 'checkpoints', '40'))
  lines = []
  summary = learn_run.learn_and_evaluate(learn_config(**{'train.num_steps': 60}), actor, folder,
                                         log=lines.append)
  assert any('checkpoint at step 40' in line and 'unreadable' in line for line in lines)
  assert any('resumed from checkpoint at step 20' in line for line in lines)
  assert np.isfinite(summary['reconstruction_mm']['mean'])
  assert os.path.isdir(os.path.join(folder, 'checkpoints_unreadable', '40'))


def test_bones_far_from_the_skin_are_refused(tmp_path):
  actor = synthetic.make_synthetic_actor(resolution=24)
  shift = np.array([0.0, 0.0, 150.0], np.float32)  # Skull and jaw 150 mm in front of the face.
  moved = dataclasses.replace(
      actor, skull=Mesh(actor.skull.vertices + shift, actor.skull.faces),
      mandible=Mesh(actor.mandible.vertices + shift, actor.mandible.faces),
      pivot=actor.pivot + shift, ground_truth=None)
  with pytest.raises(ValueError, match='sparse constraints .* below constraints.min_fraction'):
    learn_run.learn_and_evaluate(learn_config(), moved, str(tmp_path / 'model'), log=None)
  assert not os.path.exists(tmp_path / 'model' / 'model.json')


# ------------------------------------------------------------------------------------------
# Fitting.


def fit_config(**overrides):
  config = fit_test.get_config()
  config.output.render = False
  return with_overrides(config, **overrides)


@pytest.fixture(scope='module')
def fitted(learned, tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('faults') / 'fit')
  fit_run.run_fit(fit_config(), learned[0], 'synthetic', folder, log=None)
  return folder


def _npz(tmp_path, **arrays):
  path = str(tmp_path / 'targets.npz')
  np.savez(path, **arrays)
  return path


def _markers(actor, frames, mask=None):
  ids = np.arange(0, actor.num_vertices, 17)[:30]
  markers = frames[:, ids].copy()
  if mask is not None:
    markers[mask] = np.nan
  return {'markers': markers, 'marker_vertices': ids}


def _landmarks(actor, frames, intrinsics, rotation, translation):
  ids = np.arange(0, actor.num_vertices, 11)[:60]
  points = frames[:, ids]
  cam = (points @ np.asarray(rotation).T) + translation
  pixels = cam[..., :2] / cam[..., 2:3] * intrinsics[0, 0] + intrinsics[:2, 2]
  return {'landmarks': pixels, 'landmark_vertices': ids, 'intrinsics': intrinsics,
          'camera_rotation': rotation, 'camera_translation': translation}


def _front_camera(actor, distance_mm=600.0):
  """(rotation, translation) world -> camera (OpenCV: x right, y down, z forward) of a camera
  `distance_mm` in front of the face (+z) looking at it; negative puts it behind the head."""
  rotation = np.diag([1.0, -1.0, -1.0])
  eye = actor.neutral.mean(axis=0) + np.array([0.0, 0.0, distance_mm])
  return rotation, -rotation @ eye


FOCAL = np.array([[2000.0, 0, 500], [0, 2000, 500], [0, 0, 1]])


FIT_FAULTS = {
    'targets in metres': lambda a, f: dict(frames=f / 1000.0),
    'all-NaN markers': lambda a, f: _markers(a, f, mask=np.s_[:, :]),
    'a frame without markers': lambda a, f: _markers(a, f, mask=np.s_[2, :]),
    'camera behind the face': lambda a, f: _landmarks(a, f, FOCAL, *_front_camera(a, -600.0)),
    'zero intrinsics': lambda a, f: _landmarks(a, f, np.diag([0.0, 0.0, 1.0]),
                                               *_front_camera(a)),
}
FIT_MESSAGES = {'targets in metres': 'look like m read as mm',
                'all-NaN markers': 'fewer than 3 markers points',
                'a frame without markers': '1 of 4 frames see fewer than 3',
                'camera behind the face': 'behind the camera',
                'zero intrinsics': 'focal lengths'}


@pytest.mark.parametrize('name', sorted(FIT_FAULTS))
def test_implausible_targets_are_refused(learned, tmp_path, name):
  folder, actor = learned
  frames = actor.shapes[:4].astype(np.float64)
  path = _npz(tmp_path, **FIT_FAULTS[name](actor, frames))
  with pytest.raises((TargetError, ValueError), match=FIT_MESSAGES[name]):
    fit_run.run_fit(fit_config(), folder, path, str(tmp_path / 'fit'), log=None)
  assert not os.path.exists(tmp_path / 'fit')


def test_plausible_landmarks_pass(learned, tmp_path):
  folder, actor = learned
  frames = actor.shapes[:4].astype(np.float64)
  path = _npz(tmp_path, **_landmarks(actor, frames, FOCAL, *_front_camera(actor)))
  report = fit_run.run_fit(fit_config(**{'train.num_steps': 10}), folder, path,
                           str(tmp_path / 'fit'), log=None)
  assert report['num_frames'] == 4


@pytest.mark.parametrize('change', ['other targets', 'other steps', 'diverging'])
def test_refused_or_diverging_fit_changes_nothing(learned, fitted, tmp_path, change):
  folder = str(tmp_path / 'fit')
  shutil.copytree(fitted, folder)
  with open(os.path.join(folder, workdir_lib.IDENTITY)) as f:
    assert json.load(f)['kind'] == 'fit'
  before = file_hashes(folder)
  config = {'other targets': fit_config(**{'synthetic.kind': 'markers'}),
            'other steps': fit_config(**{'train.num_steps': 80}),
            'diverging': fit_config(**{'train.learning_rate': 1e6,
                                       'train.dense_learning_rate': 1e6})}[change]
  if change == 'diverging':
    fresh = tmp_path / 'fresh'
    with pytest.raises(train_loop.Diverged, match='non-finite'):
      fit_run.run_fit(config, learned[0], 'synthetic', str(fresh), log=None)
    assert not [n for _, _, names in os.walk(fresh) for n in names if n == 'fit.npz']
  else:
    with pytest.raises(workdir_lib.WorkdirError, match='holds a run made with other'):
      fit_run.run_fit(config, learned[0], 'synthetic', folder, log=None)
  assert file_hashes(folder) == before


# ------------------------------------------------------------------------------------------
# The command line: one line, non-zero exit, no traceback.


def _run(args, **kwargs):
  return subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                        timeout=300, env=dict(os.environ, PYTHONPATH=REPO), **kwargs)


def _one_line_error(run, pattern):
  text = (run.stdout + run.stderr).strip()
  assert run.returncode != 0, text
  assert 'Traceback' not in text, text
  assert pattern in text.splitlines()[-1], text


@pytest.mark.parametrize('args,pattern', [
    (['--config=configs/learn_test.py', '--config.train.nonsense=3'],
     'names a field the config does not have'),
    # Without --config the default file is loaded when the flag is defined, overrides applied.
    (['--config.train.nonsense=3'], 'names a field the config does not have'),
    (['--config=configs/no_such_config.py'], 'No such file'),
    (['--config=configs/learn_test.py', '--config.train.log_every=0'],
     'train.log_every must be'),
])
def test_cli_config_errors_are_one_line(tmp_path, args, pattern):
  run = _run(['experiments/learn_model.py', f'--workdir={tmp_path}/w'] + args)
  _one_line_error(run, pattern)
  assert not os.path.exists(tmp_path / 'w')


def test_cli_workdir_that_is_a_file(tmp_path):
  (tmp_path / 'file').write_text('x')
  run = _run(['experiments/learn_model.py', '--config=configs/learn_test.py',
              f'--workdir={tmp_path}/file'])
  _one_line_error(run, 'is a file, not a folder')
  assert (tmp_path / 'file').read_text() == 'x'


def test_cli_ctrl_c_stops_cleanly_and_resumes(tmp_path):
  workdir = str(tmp_path / 'w')
  process = subprocess.Popen(
      [sys.executable, 'experiments/learn_model.py', '--config=configs/learn_test.py',
       '--config.train.num_steps=100000', '--config.train.log_every=5', f'--workdir={workdir}'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, PYTHONPATH=REPO))
  lines = []
  for line in process.stdout:
    lines.append(line)
    if line.startswith('step '):
      process.send_signal(signal.SIGINT)
      break
  out, _ = process.communicate(timeout=120)
  text = ''.join(lines) + out
  assert process.returncode != 0, text
  assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, text
  assert 'stopped at step' in text and 'rerun the same command to resume' in text, text
  assert os.listdir(os.path.join(workdir, 'checkpoints'))
  time.sleep(0.1)
  assert not os.path.exists(os.path.join(workdir, workdir_lib.LOCK))


@pytest.mark.parametrize('overrides,message', [
    ({'model.activation': 'swish'}, 'swish'),
    ({'train.points_per_step': -1}, 'train.points_per_step must be'),
    ({'train.num_steps': 0}, 'train.num_steps must be'),
    ({'methods': 'aim,blendshapes'}, 'blendshapes'),
    ({'cv.folds': 1}, 'cv.folds must be 0'),
    ({'cv.scales': '1,lots'}, 'cv.scales must be'),
    ({'loss.landmark_field_scale': -0.1}, 'loss.landmark_field_scale must be'),
    ({'train.spike_clip': -3.0}, 'train.spike_clip must be 0'),
    ({'train.spike_clip': 0.5}, 'train.spike_clip must be 0'),
    ({'noise.markers_mm': -0.3}, 'noise.markers_mm must be'),
    ({'loss.field_reference_markers': -150}, 'loss.field_reference_markers must be'),
])
def test_bad_fit_settings_are_refused_before_loading(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    fit_run.run_fit(fit_config(**overrides), str(tmp_path / 'no_model'), 'synthetic',
                    str(tmp_path / 'fit'), log=None)
  assert not os.path.exists(tmp_path / 'fit')
