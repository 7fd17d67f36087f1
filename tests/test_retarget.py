"""Performance retargeting (aim_jax/retarget.py, aim_jax/runs/retarget.py,
experiments/retarget.py)."""

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
from aim_jax.fitting import basis as basis_lib
from aim_jax.models import aim
from aim_jax.runs import retarget as retarget_run
from configs import retarget_test

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rotation(axis, deg):
  axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
  a = np.radians(deg)
  k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
  return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _about(points, rotation, translation, pivot):
  return (points - pivot) @ rotation.T + pivot + translation


@pytest.fixture(scope='module')
def pair():
  return (synthetic.make_synthetic_actor(resolution=24, seed=0),
          synthetic.make_synthetic_actor(resolution=24, seed=3))


def _oracle(actor):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  return basis_lib.basis_from_ground_truth(actor, spec)


def test_jaw_mapping_reproduces_the_motion_in_the_target_pivot_frame():
  rng = np.random.default_rng(0)
  rotation = np.stack([_rotation(rng.normal(size=3), a) for a in (5.0, 20.0, -12.0)])
  translation = rng.normal(size=(3, 3))
  p_s, p_t = np.array([0.0, -3.0, 4.0]), np.array([2.0, 5.0, -6.0])
  q_s, q_t = _rotation([0, 1, 0], 10.0), _rotation([1, 0.2, 0], -15.0)
  mapped_r, mapped_t = retarget.map_jaw(rotation, translation, q_s, q_t)
  local = rng.normal(size=(7, 3)) * 30.0  # Points in pivot-frame coordinates.
  for f in range(3):
    moved_s = _about(p_s + local @ q_s.T, rotation[f], translation[f], p_s)
    moved_t = _about(p_t + local @ q_t.T, mapped_r[f], mapped_t[f], p_t)
    # Same motion in each pivot frame's coordinates.
    np.testing.assert_allclose((moved_s - p_s) @ q_s, (moved_t - p_t) @ q_t, atol=1e-4)
  # Canonical axes: R and t are kept (the motion is applied about the target's own pivot).
  same_r, same_t = retarget.map_jaw(rotation, translation)
  np.testing.assert_allclose(same_r, rotation, atol=1e-6)
  np.testing.assert_allclose(same_t, translation, atol=1e-6)
  # World form round trip.
  r, t_world = retarget.world_transform(rotation, translation, p_s)
  x = local[:2]
  np.testing.assert_allclose(x @ r[1].T + t_world[1], _about(x, rotation[1], translation[1], p_s),
                             atol=1e-9)
  _, back = retarget.about_pivot(r, t_world, p_s)
  np.testing.assert_allclose(back, translation, atol=1e-9)


def test_delta_transfer_is_exact_between_rigidly_offset_actors(pair):
  source, _ = pair
  offset = np.array([3.0, -2.0, 5.0], np.float32)
  performance = synthetic_performance.make_performance(source, num_frames=4, seed=1)
  moved = synthetic_performance.perform(_shifted(source, offset), performance.weights,
                                        performance.control_names)
  delta = retarget.delta_transfer(performance.frames, source.neutral, source.neutral + offset)
  np.testing.assert_allclose(delta, moved.frames, atol=1e-3)
  # AIM retargeting with perfect models is exact there too.
  coefficients, jaw = _learning_shape_coefficients(source)
  target_basis = _oracle(_shifted(source, offset))
  frames = retarget.retarget_fit({'coefficients': coefficients, **jaw}, target_basis)['frames']
  np.testing.assert_allclose(frames, source.shapes + offset, atol=2e-3)


def _shifted(actor, offset):
  """The actor moved rigidly by `offset` mm (skin and pivot; the ground truth's bone points are
  left where they are, since the synthetic expressions read their chart coordinates there)."""
  import dataclasses
  return dataclasses.replace(actor, shapes=actor.shapes + offset, pivot=actor.pivot + offset)


def _learning_shape_coefficients(actor):
  """One-hot per-point coefficients and the true jaws of the actor's S learning shapes."""
  num_s, num_v = actor.num_shapes, actor.num_vertices
  w = np.concatenate([np.zeros((1, num_s - 1)), np.eye(num_s - 1)]).astype(np.float32)
  coefficients = np.broadcast_to(w[:, None], (num_s, num_v, num_s - 1)).copy()
  gt = actor.ground_truth
  return coefficients, {'jaw_rotation': gt.jaw_rotation, 'jaw_translation': gt.jaw_translation}


def test_aim_retargeting_with_perfect_models_gives_the_targets_own_shapes(pair):
  """Jaw motion about each actor's own pivot makes delta transfer wrong; AIM gets it right."""
  source, target = pair
  assert np.linalg.norm(source.pivot - target.pivot) > 2.0
  coefficients, jaw = _learning_shape_coefficients(source)
  result = retarget.retarget_fit({'coefficients': coefficients, **jaw}, _oracle(target))
  aim_error = np.linalg.norm(result['frames'] - target.shapes, axis=-1)
  delta = retarget.delta_transfer(source.shapes, source.neutral, target.neutral)
  delta_error = np.linalg.norm(delta - target.shapes, axis=-1)
  assert aim_error.max() < 5e-3
  jaw_shape = list(source.shape_names).index('jaw_open_wide')
  assert delta_error[jaw_shape].max() > 1.0
  assert delta_error.mean() > 20 * aim_error.mean()


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
