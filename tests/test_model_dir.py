"""The model directory (aim_jax/model_dir.py): save / load round trip, edited models, errors."""

import json
import os

import jax
import numpy as np
import pytest

from aim_jax import learning, model_dir, train_loop
from aim_jax.anatomy.constraints import SparseConstraints
from aim_jax.models import aim, edit_field
from configs import learn_test


def _constraints(actor):
  """A few hand-made constraints (the round trip does not need real ones)."""
  vertex = np.array([0, 5, 17], np.int32)
  points = np.asarray(actor.neutral[vertex], np.float32)
  return SparseConstraints(
      points=points, face=np.array([0, 1, 2], np.int32),
      barycentric=np.full((3, 3), 1.0 / 3.0, np.float32), bone_point=points - [0.0, 0.0, 5.0],
      thickness=np.full(3, 5.0, np.float32), bone_normal=np.tile([0.0, 0.0, 1.0], (3, 1)),
      bone_id=np.array([0, 1, 0], np.int32), vertex=vertex, num_vertices=actor.num_vertices)


def _write_model(workdir, actor, seed=0):
  """A model directory of the tiny actor holding initial params with random jaws; returns
  (params, spec, config)."""
  config = learn_test.get_config()
  config.model.hidden = 16
  spec = learning.model_spec(config, actor)
  model_dir.save_model(workdir, spec, config, actor, _constraints(actor))
  state = learning.create_state(config, spec, learning.make_optimizer(config))
  params = dict(state.params)
  key = jax.random.PRNGKey(seed)
  params['jaw'] = {'rot6d': params['jaw']['rot6d'] + 0.05 * jax.random.normal(
      key, params['jaw']['rot6d'].shape), 'translation': jax.random.normal(
          key, params['jaw']['translation'].shape)}
  with train_loop.Checkpoints(workdir, log=None) as checkpoints:
    checkpoints.save(1, state.replace(params=params), force=True)
  return params, spec, config


def _assert_same_tree(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_save_then_load_round_trip(tmp_path, tiny_actor):
  workdir = str(tmp_path / 'model')
  params, spec, config = _write_model(workdir, tiny_actor)
  loaded = model_dir.load_model(workdir)
  assert loaded.spec == spec
  _assert_same_tree(loaded.params, params)
  assert loaded.edit is None
  assert loaded.config.model.hidden == config.model.hidden
  assert loaded.info['actor'] == {'name': 'tiny', 'source': 'tiny',
                                  'shape_names': list(tiny_actor.shape_names),
                                  'num_vertices': tiny_actor.num_vertices}
  assert sorted(os.listdir(workdir)) == ['checkpoints', 'constraints.npz', 'model.json']
  constraints = model_dir.read_constraints(workdir, tiny_actor.num_vertices)
  np.testing.assert_array_equal(constraints.vertex, [0, 5, 17])
  assert model_dir.read_constraints(workdir, tiny_actor.num_vertices + 1) is None


def test_edited_model_loads_its_edit_apart_from_the_params(tmp_path, tiny_actor):
  base_dir, out = str(tmp_path / 'base'), str(tmp_path / 'edited')
  params, spec, _ = _write_model(base_dir, tiny_actor)
  base = model_dir.load_model(base_dir)
  op = edit_field.make_op(tiny_actor.neutral[:1], radius=10.0, falloff=10.0,
                          thickness_scale=1.5)
  model_dir.write_edited_model(base_dir, out, [op], base.info, {'what': 'test'})
  edited = model_dir.load_model(out)
  assert 'edit' not in edited.params
  _assert_same_tree(edited.params, params)
  assert len(edited.edit) == 1
  np.testing.assert_allclose(edited.edit[0]['anchors'], tiny_actor.neutral[:1], atol=1e-6)
  assert edited.info['edit']['num_operations'] == 1
  assert edited.info['edit']['history'] == [{'what': 'test'}]
  # The edit acts through the explicit argument only.
  plain = aim.evaluate_chunked(edited.params, tiny_actor.neutral, spec)
  with_edit = aim.evaluate_chunked(edited.params, tiny_actor.neutral, spec, edit=edited.edit)
  assert not np.allclose(plain['thickness'], with_edit['thickness'])
  np.testing.assert_array_equal(plain['bone'], with_edit['bone'])
  # The edit is a traced argument: another edit of the same structure reuses the compiled block.
  size = aim._evaluate_block._cache_size()
  other = [dict(op, thickness_scale=np.float32(2.0))]
  aim.evaluate_chunked(edited.params, tiny_actor.neutral, spec, edit=other)
  assert aim._evaluate_block._cache_size() == size
  with pytest.raises(model_dir.ModelDirError, match='already holds a model'):
    model_dir.write_edited_model(base_dir, out, [op], base.info, {})
  with pytest.raises(model_dir.ModelDirError, match='its own directory'):
    model_dir.write_edited_model(base_dir, base_dir, [op], base.info, {})


def test_missing_model_json_is_a_one_line_error_naming_the_path(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    model_dir.load_model(str(tmp_path / 'nothing'))
  message = str(err.value)
  assert '\n' not in message
  assert os.path.join(str(tmp_path / 'nothing'), 'model.json') in message


def test_model_json_is_written_atomically_as_strict_json(tmp_path, tiny_actor):
  workdir = str(tmp_path / 'model')
  _write_model(workdir, tiny_actor)
  text = open(os.path.join(workdir, 'model.json')).read()
  info = json.loads(text, parse_constant=lambda c: pytest.fail(f'non-strict JSON: {c}'))
  assert model_dir.spec_of(info) == model_dir.load_model(workdir).spec
  assert not os.path.exists(os.path.join(workdir, 'model.json.tmp'))
