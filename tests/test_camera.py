"""The pinhole camera of landmark fitting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax import geometry
from aim_jax.fitting import camera as camera_lib


def test_projection_known_answer_and_gradient():
  cam = camera_lib.look_at(eye=(0.0, 0.0, 500.0), target=(0.0, 0.0, 0.0), focal_px=1000.0,
                           image_size=(640, 480))
  # The target projects to the principal point; +x (subject's left) to the image right, +y up.
  uv = np.asarray(camera_lib.project(cam, jnp.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0],
                                                     [0.0, 50.0, 0.0]])))
  np.testing.assert_allclose(uv[0], [320.0, 240.0], atol=1e-3)
  np.testing.assert_allclose(uv[1], [420.0, 240.0], atol=1e-3)
  np.testing.assert_allclose(uv[2], [320.0, 140.0], atol=1e-3)
  point = jnp.array([12.0, -7.0, 30.0])
  jac = np.asarray(jax.jacfwd(lambda p: camera_lib.project(cam, p))(point))
  eps = 1e-2
  for i in range(3):
    step = np.zeros(3, np.float32)
    step[i] = eps
    numeric = (np.asarray(camera_lib.project(cam, point + step))
               - np.asarray(camera_lib.project(cam, point - step))) / (2 * eps)
    np.testing.assert_allclose(jac[:, i], numeric, rtol=2e-2, atol=1e-3)


def test_camera_offset_identity_and_bad_rotation():
  cam = camera_lib.look_at(eye=(0.0, 0.0, 500.0), target=(0.0, 0.0, 0.0))
  same = camera_lib.apply_offset(cam, jnp.asarray(geometry.IDENTITY_6D), jnp.zeros(3))
  np.testing.assert_allclose(np.asarray(same.rotation), np.asarray(cam.rotation), atol=1e-6)
  with pytest.raises(ValueError, match='rotation'):
    camera_lib.make_camera(np.eye(3), 2 * np.eye(3), np.zeros(3))
