"""Anatomy editing (aim_jax/edit.py, aim_jax/models/edit_field.py, aim_jax/runs/edit.py)."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from tiny_models import make_model_workdir

from aim_jax import edit, retarget
from aim_jax import model_dir as model_dir_lib
from aim_jax.data import synthetic
from aim_jax.fitting import methods
from aim_jax.models import aim, edit_field
from aim_jax.runs import edit as edit_run
from aim_jax.runs import fit as fit_run
from aim_jax.runs import retarget as retarget_run
from configs import edit as edit_config
from configs import fit_test

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def actor():
  return synthetic.make_synthetic_actor(resolution=24)


@pytest.fixture(scope='module')
def model(actor):
  """Random (untrained) AIM params with a jaw: the edit's properties do not need training."""
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes, hidden=32, depth=2)
  params = aim.init(jax.random.PRNGKey(0), spec)
  key = jax.random.PRNGKey(1)
  params['jaw'] = {'rot6d': params['jaw']['rot6d'] + 0.1 * jax.random.normal(
      key, params['jaw']['rot6d'].shape), 'translation': jax.random.normal(
          key, params['jaw']['translation'].shape)}
  return params, spec


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  return make_model_workdir(str(tmp_path_factory.mktemp('base_model')), seed=0)


def _config(**fields):
  config = edit_config.get_config()
  config.region.center_vertex = -1
  for key, value in fields.items():
    node = config
    *path, last = key.split('.')
    for p in path:
      node = node[p]
    node[last] = value
  return config


def _evaluate(params, spec, actor, ops=None):
  return edit.evaluate(params, spec, np.asarray(actor.neutral, np.float32), ops)


def test_weight_is_one_inside_zero_outside_and_smooth():
  op = edit_field.make_op([[0.0, 0.0, 0.0]], radius=5.0, falloff=10.0)
  r = np.linspace(0.0, 20.0, 201)
  points = np.stack([r, np.zeros_like(r), np.zeros_like(r)], -1).astype(np.float32)
  w = np.asarray(edit_field.region_weight(op, points))
  np.testing.assert_array_equal(w[r <= 5.0], 1.0)
  np.testing.assert_array_equal(w[r >= 15.0], 0.0)
  assert np.all(np.diff(w) <= 1e-7)  # Monotone.
  assert np.abs(np.diff(w)).max() < 0.03  # No jump (C2 ramp over 10 mm in 0.1 mm steps).


def test_thickness_edit_scales_inside_only_and_keeps_every_bone(actor, model):
  params, spec = model
  center = actor.neutral[np.argmax(actor.neutral[:, 0])]  # A lateral point: a cheek's side.
  config = _config(**{'region.center_mm': ','.join(map(str, center)), 'region.radius_mm': 10.0,
                      'region.falloff_mm': 10.0, 'region.symmetric': False,
                      'thickness_scale': 1.5})
  ops, _ = edit.make_ops(config, actor)
  before = _evaluate(params, spec, actor)
  after = _evaluate(params, spec, actor, edit.combined_edit(None, ops))
  weight = edit.region_weight(ops, actor.neutral)
  inside, core, outside = weight > 0, weight >= 1, weight <= 0
  assert core.sum() > 0 and outside.sum() > 0.5 * actor.num_vertices
  # Outside the region nothing changes, bit for bit; bones nowhere.
  np.testing.assert_array_equal(after['thickness'][outside], before['thickness'][outside])
  np.testing.assert_array_equal(after['shapes'][:, outside], before['shapes'][:, outside])
  np.testing.assert_array_equal(after['bone'], before['bone'])
  np.testing.assert_array_equal(after['normal'], before['normal'])
  # Inside: thickness times the factor in the core, between 1 and 1.5 in the falloff.
  np.testing.assert_allclose(after['thickness'][core], 1.5 * before['thickness'][core],
                             rtol=1e-6)
  ratio = after['thickness'][inside] / before['thickness'][inside]
  assert np.all((ratio >= 1.0 - 1e-6) & (ratio <= 1.5 + 1e-6))
  # The neutral moves along the anatomy normal by the change of thickness.
  expected = before['shapes'][0] + (after['thickness'] - before['thickness'])[:, None] * (
      before['normal'])
  np.testing.assert_allclose(after['shapes'][0], expected, atol=1e-4)


def test_bone_edit_moves_bones_in_region_and_expressions_carry_it(actor, model):
  params, spec = model
  chin = int(np.argmin(actor.neutral[:, 1]))
  config = _config(**{'region.center_vertex': chin, 'region.radius_mm': 5.0,
                      'region.falloff_mm': 20.0, 'thickness_scale': 1.0,
                      'bone_offset_mm': '0,-6,3'})
  ops, description = edit.make_ops(config, actor)
  assert len(ops) == 1  # On the midline with a midline offset: its own mirror image.
  assert description['bone_offset_mm'] == [0.0, -6.0, 3.0]
  before = _evaluate(params, spec, actor)
  after = _evaluate(params, spec, actor, edit.combined_edit(None, ops))
  weight = edit.region_weight(ops, actor.neutral)
  outside, core = weight <= 0, weight >= 1
  np.testing.assert_array_equal(after['bone'][outside], before['bone'][outside])
  np.testing.assert_allclose(after['bone'][core] - before['bone'][core],
                             np.broadcast_to([0.0, -6.0, 3.0], (core.sum(), 3)), atol=1e-4)
  np.testing.assert_array_equal(after['thickness'], before['thickness'])
  # Every expression: s_i' - s_i = ((1 - k) I + k R_i)(s0' - s0) (same k, R_i, t_i, e_i).
  residual = edit.shape_carry_residual(before, after, params, spec)
  assert residual.max() < 1e-4
  moved = np.linalg.norm(after['shapes'] - before['shapes'], axis=-1)
  assert np.all(moved[:, core].mean(axis=1) > 3.0)


def test_symmetric_lateral_offset_gives_mirrored_operations(actor):
  config = _config(**{'region.kind': 'vertices', 'region.vertices': '5,6,7',
                      'thickness_scale': 1.2, 'bone_offset_mm': '2,0,0'})
  ops, _ = edit.make_ops(config, actor)
  assert len(ops) == 2
  np.testing.assert_allclose(ops[1]['bone_offset'], [-2.0, 0.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(ops[1]['anchors'][:, 0], -ops[0]['anchors'][:, 0], atol=1e-4)


def test_region_files_and_bad_input(tmp_path, actor):
  num = actor.num_vertices
  mask = np.zeros(num, bool)
  mask[[3, 10, 20]] = True
  np.save(tmp_path / 'mask.npy', mask)
  np.testing.assert_array_equal(edit.read_region_file(str(tmp_path / 'mask.npy'), num),
                                [3, 10, 20])
  (tmp_path / 'ids.txt').write_text('20\n3\n10\n')
  np.testing.assert_array_equal(edit.read_region_file(str(tmp_path / 'ids.txt'), num),
                                [3, 10, 20])
  (tmp_path / 'bad.txt').write_text(f'1\n{num + 5}\n')
  with pytest.raises(edit.EditError, match='bad.txt'):
    edit.read_region_file(str(tmp_path / 'bad.txt'), num)
  with pytest.raises(edit.EditError, match='no such region file'):
    edit.read_region_file(str(tmp_path / 'missing.npy'), num)
  with pytest.raises(edit.EditError, match='changes nothing'):
    edit.make_ops(_config(**{'region.center_mm': '0,0,0', 'thickness_scale': 1.0}), actor)
  with pytest.raises(edit.EditError, match='center_mm'):
    edit.make_ops(_config(**{'region.center_mm': '1,2'}), actor)


def test_edited_model_workdir_loads_fits_and_carries_into_a_performance(tmp_path, model_dir,
                                                                         actor):
  out = str(tmp_path / 'edited')
  config = _config(**{'region.center_vertex': int(np.argmax(actor.neutral[:, 0])),
                      'region.radius_mm': 12.0, 'thickness_scale': 1.5,
                      'output.render_shapes': 'smile'})
  report = edit_run.run_edit(config, model_dir, out, log=None)
  assert report['neutral_displacement_mm']['untouched_max'] == 0.0
  assert report['bone_displacement_mm']['untouched_max'] == 0.0
  assert report['neutral_displacement_mm']['affected']['max'] > 0.5
  assert max(s['carry_residual_mm'] for s in report['shapes'].values()) < 1e-4
  for name in ('model.json', 'edit.npz', 'edit_report.json', 'renders/before_after.png',
               'meshes/00_neutral.ply'):
    assert os.path.exists(os.path.join(out, name)), name
  with pytest.raises(model_dir_lib.ModelDirError, match='already holds a model'):
    edit_run.run_edit(config, model_dir, out, log=None)

  # The edited workdir is a model: the fitting pipeline loads it with the edit applied.
  base = model_dir_lib.load_fit_model(model_dir)
  edited = model_dir_lib.load_fit_model(out)
  loaded = model_dir_lib.load_model(out)
  assert 'edit' not in loaded.params and len(loaded.edit) == len(edited.edit) >= 1
  fields = edit.evaluate(loaded.params, loaded.spec, np.asarray(actor.neutral, np.float32),
                         loaded.edit)
  np.testing.assert_allclose(np.asarray(edited.basis.neutral), fields['shapes'][0], atol=1e-5)
  np.testing.assert_allclose(np.asarray(edited.gbs_basis.neutral), fields['shapes'][0],
                             atol=1e-5)
  untouched = np.asarray(edit.region_weight(loaded.edit, actor.neutral)) <= 0
  np.testing.assert_array_equal(np.asarray(edited.basis.neutral)[untouched],
                                np.asarray(base.basis.neutral)[untouched])

  # A performance composed on the base carries the edit: same coefficients and jaws on the edited
  # model move only the edited region, by the neutral's change carried through the jaw skinning.
  fit_config = fit_test.get_config()
  fit_config.methods = 'aim'
  fit_config.output.render = False
  targets, truth = methods.synthetic_sequence_targets(fit_config, edited.actor)
  fit_run.fit_and_report(fit_config, edited, targets, truth, str(tmp_path / 'fit'), log=None)
  fit = retarget_run.load_source_fit(str(tmp_path / 'fit'), actor.num_vertices,
                                 actor.num_shapes - 1)
  on_base = retarget.compose_frames(base.basis, fit['coefficients'], fit['jaw_rotation'],
                                    fit['jaw_translation'])
  on_edit = retarget.compose_frames(edited.basis, fit['coefficients'], fit['jaw_rotation'],
                                    fit['jaw_translation'])
  np.testing.assert_allclose(on_edit, fit['frames'], atol=1e-4)
  np.testing.assert_array_equal(on_edit[:, untouched], on_base[:, untouched])
  delta = np.asarray(edited.basis.neutral) - np.asarray(base.basis.neutral)
  k = np.asarray(base.basis.skinning)[:, None]
  carried = (1 - k) * delta[None] + k * np.einsum('fij,vj->fvi', fit['jaw_rotation'], delta)
  np.testing.assert_allclose(on_edit - on_base, carried, atol=1e-3)


def test_edit_command_reports_bad_input_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, 'experiments/edit_anatomy.py', f'--model_dir={tmp_path}/nothing',
       f'--workdir={tmp_path}/out'], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith('error: ') and 'model.json' in lines[-1]
