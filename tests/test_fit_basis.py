"""The ModelBasis of fitting: cached AIM fields and the ground-truth oracle."""

import jax.numpy as jnp
import numpy as np

from aim_jax.fitting import model as model_lib


def test_ground_truth_basis_reproduces_learning_shapes(actor, oracle):
  gt = actor.ground_truth
  w = np.eye(actor.num_shapes - 1, dtype=np.float32)
  w = np.concatenate([np.zeros((1, w.shape[1]), np.float32), w])  # Neutral, then one-hot.
  frame = {'jaw_rotation': jnp.asarray(gt.jaw_rotation, jnp.float32),
           'jaw_translation': jnp.asarray(gt.jaw_translation, jnp.float32)}
  w_points = jnp.broadcast_to(jnp.asarray(w)[:, None], (w.shape[0], actor.num_vertices,
                                                        w.shape[1]))
  x = model_lib.compose(oracle, w_points, frame)
  np.testing.assert_allclose(np.asarray(x), actor.shapes, atol=1e-3)
