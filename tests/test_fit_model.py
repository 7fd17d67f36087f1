"""The fitting model (F_T, F_W and their variants): shapes and known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax.fitting import model as model_lib


@pytest.mark.parametrize('variant', model_lib.VARIANTS)
def test_every_frame_starts_at_the_neutral(oracle, variant):
  spec = model_lib.FitSpec(num_coefficients=oracle.num_coefficients, code_dim=8, hidden=16,
                           depth=2, rank=4, variant=variant, head_pose=True)
  params = model_lib.init(jax.random.PRNGKey(0), spec, num_frames=5)
  x, w, frame = model_lib.estimate(params, oracle, spec)
  assert x.shape == (5, oracle.num_vertices, 3)
  assert w.shape == (5, oracle.num_vertices, oracle.num_coefficients)
  np.testing.assert_allclose(np.asarray(x), np.broadcast_to(oracle.neutral, x.shape), atol=1e-5)
  np.testing.assert_allclose(np.asarray(frame['jaw_rotation']), np.tile(np.eye(3), (5, 1, 1)),
                             atol=1e-6)


def test_per_point_split_first_layer_equals_concatenated_input(oracle):
  spec = model_lib.FitSpec(num_coefficients=oracle.num_coefficients, code_dim=8, hidden=16,
                           depth=2)
  params = model_lib.init(jax.random.PRNGKey(1), spec, num_frames=3)
  params['coefficients'][-1]['w'] = jax.random.normal(jax.random.PRNGKey(2),
                                                      params['coefficients'][-1]['w'].shape)
  coords = oracle.coords[:50]
  w = model_lib.coefficients(params, coords, spec)
  from aim_jax.models import siren
  inputs = jnp.concatenate([jnp.broadcast_to(params['codes'][:, None], (3, 50, 8)),
                            jnp.broadcast_to(coords[None], (3, 50, 3))], axis=-1)
  reference = siren.apply(params['coefficients'], inputs, spec.coefficient_mlp())
  np.testing.assert_allclose(np.asarray(w), np.asarray(reference), atol=1e-4)
