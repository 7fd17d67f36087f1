"""Performance retargeting (aim_jax/retarget.py) on known answers. The command end to end:
tests/end_to_end/test_retarget_command.py."""

import numpy as np
import pytest

from aim_jax import retarget
from aim_jax.data import synthetic, synthetic_performance
from aim_jax.fitting import basis as basis_lib
from aim_jax.models import aim


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


def test_the_error_ratio_is_none_when_delta_transfer_is_exact():
  from aim_jax.runs import retarget as retarget_run
  assert retarget_run.error_ratio(0.2, 0.8) == pytest.approx(0.25)
  assert retarget_run.error_ratio(0.2, 0.0) is None
