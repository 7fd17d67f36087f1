"""Learning (aim_jax/learning.py): a resumed run equals an uninterrupted one, loss terms switch off,
bad input is refused, the jaw prior. A learning run end to end:
tests/end_to_end/test_learn_command.py."""

import json

import jax
import numpy as np
import pytest
from helpers import assert_trees_close

from aim_jax import learning
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.models import aim
from configs import learn_test


def test_resume_matches_uninterrupted(tmp_path, actor_and_constraints):
  actor, constraints = actor_and_constraints
  config = learn_test.get_config()
  config.train.num_steps = 40
  straight, _, _ = learning.train(config, actor, constraints, str(tmp_path / 'a'), log=None)
  learning.train(config, actor, constraints, str(tmp_path / 'b'), log=None, stop_after=20)
  resumed, _, _ = learning.train(config, actor, constraints, str(tmp_path / 'b'), log=None)
  for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  metrics = (tmp_path / 'b' / 'metrics.jsonl').read_text().splitlines()
  steps = [json.loads(line)['step'] for line in metrics]
  assert steps == sorted(set(steps)) and steps[-1] == 40


def test_switching_a_term_off_removes_it(actor_and_constraints):
  config = learn_test.get_config()
  config.loss.use.anatomy = False
  weights = learning.loss_weights(config)
  assert weights['anatomy'] == 0 and weights['anatomy_normal'] == 0 and weights['symmetry'] > 0


def test_no_constraints_is_a_clear_error(actor_and_constraints):
  actor, constraints = actor_and_constraints
  empty = constraints_lib.SparseConstraints(
      points=constraints.points[:0], face=constraints.face[:0],
      barycentric=constraints.barycentric[:0], bone_point=constraints.bone_point[:0],
      thickness=constraints.thickness[:0], bone_normal=constraints.bone_normal[:0],
      bone_id=constraints.bone_id[:0], vertex=constraints.vertex[:0],
      num_vertices=constraints.num_vertices)
  with pytest.raises(ValueError, match='no sparse anatomical constraint'):
    learning.make_learning_data(actor, empty)


def test_jaw_prior_pulls_the_learned_jaws_toward_the_users(actor_and_constraints):
  import dataclasses
  actor, constraints = actor_and_constraints
  gt = actor.ground_truth
  with_jaws = dataclasses.replace(actor, shape_jaws=(gt.jaw_rotation, gt.jaw_translation))
  config = learn_test.get_config()
  spec = learning.model_spec(config, actor)
  params = learning.create_state(config, spec, learning.make_optimizer(config)).params
  weights = dict(learning.loss_weights(config), jaw_prior=1.0)
  data = learning.make_learning_data(with_jaws, constraints)
  assert data.jaw_probe.shape[1] == 3
  assert data.jaw_target.shape == (actor.num_shapes,) + data.jaw_probe.shape
  loss = lambda p: learning.loss_fn(p, data, jax.random.PRNGKey(0), spec, weights, 256, 128,
                                    64, 2.0)
  (_, terms), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  assert float(terms['jaw_prior']) > 1.0  # The initial jaws are closed, the true ones are not.
  assert np.abs(np.asarray(grads['jaw']['rot6d'])).max() > 0
  # Without per-shape jaws, or with weight 0, the term is not computed.
  plain = learning.make_learning_data(actor, constraints)
  assert plain.jaw_probe is None
  _, terms = jax.eval_shape(lambda p: learning.loss_fn(
      p, plain, jax.random.PRNGKey(0), spec, weights, 256, 128, 64, 2.0), params)
  assert 'jaw_prior' not in terms and 'reconstruction' in terms


def test_blocks_of_steps_learn_what_single_steps_learn(actor_and_constraints):
  actor, constraints = actor_and_constraints
  config = learn_test.get_config()
  config.train.num_steps = 20
  single, _, history = learning.train(config, actor, constraints, None, log=None)
  config.train.steps_per_call = 5
  blocked, _, block_history = learning.train(config, actor, constraints, None, log=None)
  assert [r['step'] for r in block_history] == [r['step'] for r in history]
  for a, b in zip(history, block_history):
    assert a['total'] == pytest.approx(b['total'], rel=1e-4)
  assert_trees_close(single, blocked, rtol=1e-3, atol=1e-5)


def test_regularisers_read_random_positions_not_the_first_ones():
  drawn = [np.asarray(learning.regulariser_positions(jax.random.PRNGKey(k), 1000, 100))
           for k in range(5)]
  for positions in drawn:
    assert len(np.unique(positions)) == 100 and positions.max() < 1000
  seen = np.unique(np.concatenate(drawn))
  assert seen.max() > 900 and len(seen) > 400  # Spread over the batch, new ones every step.
  np.testing.assert_array_equal(learning.regulariser_positions(jax.random.PRNGKey(0), 50, 0),
                                np.arange(50))


def test_fold_penalty_sees_a_folded_anatomy_and_every_new_term_has_a_gradient(
    actor_and_constraints):
  actor, constraints = actor_and_constraints
  config = learn_test.get_config()
  spec = learning.model_spec(config, actor)
  params = learning.create_state(config, spec, learning.make_optimizer(config)).params
  new_terms = {'bone_smooth': 'bone', 'normal_smooth': 'normal', 'fold': 'bone',
               'depth_prior': 'thickness', 'bone_symmetry': 'bone', 'neutral': 'thickness'}
  assert learning.make_learning_data(actor, constraints).prior_depth is None
  data = learning.make_learning_data(actor, constraints, depth_prior=True)
  # The synthetic bone meshes lie behind the skin: the prior covers most of the face.
  assert np.asarray(data.prior_mask).mean() > 0.5
  assert np.all(np.asarray(data.prior_depth)[np.asarray(data.prior_mask)] > 0)
  weights = {name: 1.0 for name in new_terms}
  for batch in (0, 256):  # Full batch (every triangle) and a minibatch (random triangles).
    # Margin 2: every triangle of the near-skin initial anatomy (area ratio ~1) is penalised.
    loss = lambda p, b=batch: learning.loss_fn(p, data, jax.random.PRNGKey(1), spec, weights, b,
                                               0, 64, 2.0, 2.0)
    (total, terms), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    assert np.isfinite(float(total)) and float(total) > 0
    for name, network in new_terms.items():
      assert float(terms[name]) > 0, name
      assert max(np.abs(np.asarray(g)).max()
                 for g in jax.tree_util.tree_leaves(grads[network])) > 0, name
  # An anatomy equal to the skin pushed 10 mm in along z has no fold; with every triangle turned
  # over (its corners in reverse order) each has area ratio -1, so the mean hinge is 1.
  skin = np.asarray(actor.neutral)
  normal = np.asarray(data.fold_normal)
  copy = (skin - np.array([0.0, 0.0, 10.0]))[np.asarray(actor.faces)]
  assert float(learning.losses.fold(copy, normal, 0.0)) == 0.0
  turned_over = copy[:, ::-1]
  assert float(learning.losses.fold(turned_over, normal, 0.0)) == pytest.approx(1.0, rel=1e-4)
  # The neutral term is L_R of shape 0 alone: L_R of S shapes averages it in once.
  one = lambda p: learning.loss_fn(p, data, jax.random.PRNGKey(1), spec,
                                   {'reconstruction': 1.0, 'neutral': 1.0}, 0, 0, 64, 2.0)[1]
  terms = jax.jit(one)(params)
  shapes = np.asarray(aim.reconstruct(params, actor.neutral, spec))
  per_shape = np.mean(np.sum((shapes - np.asarray(actor.shapes)) ** 2, axis=-1), axis=-1)
  assert float(terms['neutral']) == pytest.approx(per_shape[0], rel=1e-4)
  assert float(terms['reconstruction']) == pytest.approx(per_shape.mean(), rel=1e-4)
  config.loss.use.fold = False
  config.loss.use.anatomy_smooth = False
  config.loss.use.bone_symmetry = False
  config.loss.use.neutral = False
  # depth_prior and bone_symmetry are 0 in the config already.
  assert all(learning.loss_weights(config)[n] == 0 for n in new_terms)
