"""Anatomy editing (aim_jax/edit.py, aim_jax/models/edit_field.py). The command and the edited
model workdir end to end: tests/end_to_end/test_edit_command.py."""

import jax
import numpy as np
import pytest
from helpers import with_overrides

from aim_jax import edit
from aim_jax.data import synthetic
from aim_jax.models import aim, edit_field
from configs import edit as edit_config


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


def _config(**fields):
  config = edit_config.get_config()
  config.region.center_vertex = -1
  return with_overrides(config, **fields)


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
  (tmp_path / 'short_mask.txt').write_text('\n'.join(['0', '1'] * 5))
  with pytest.raises(edit.EditError, match=f'a 0/1 mask of 10 values, but the model has {num}'):
    edit.read_region_file(str(tmp_path / 'short_mask.txt'), num)
  with pytest.raises(edit.EditError, match='changes nothing'):
    edit.make_ops(_config(**{'region.center_mm': '0,0,0', 'thickness_scale': 1.0}), actor)
  with pytest.raises(edit.EditError, match='center_mm'):
    edit.make_ops(_config(**{'region.center_mm': '1,2'}), actor)
