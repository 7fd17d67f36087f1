"""A pinhole camera (OpenCV convention) for 2D landmark constraints (supplementary B.1).

World points (mm) go to the camera frame by x_cam = R x + t (x right, y down, z into the scene),
then to pixels by u = fx x/z + cx, v = fy y/z + cy. Extrinsics can be refined during fitting as a
6D rotation and translation offset (`apply_offset`).
"""

from __future__ import annotations

import flax
import jax.numpy as jnp
import numpy as np

from aim_jax import geometry


@flax.struct.dataclass
class Camera:
  """Intrinsics (3, 3) in px; rotation (3, 3) world->camera; translation (3,) mm."""
  intrinsics: jnp.ndarray
  rotation: jnp.ndarray
  translation: jnp.ndarray

  def to_dict(self) -> dict:
    return {k: np.asarray(getattr(self, k)).tolist()
            for k in ('intrinsics', 'rotation', 'translation')}


def make_camera(intrinsics, rotation, translation) -> Camera:
  """A Camera from array-likes, with shape checks (ValueError naming the bad field)."""
  arrays = {'intrinsics': np.asarray(intrinsics, np.float32),
            'rotation': np.asarray(rotation, np.float32),
            'translation': np.asarray(translation, np.float32).reshape(-1)}
  for name, shape in (('intrinsics', (3, 3)), ('rotation', (3, 3)), ('translation', (3,))):
    if arrays[name].shape != shape:
      raise ValueError(f'camera {name} must have shape {shape}, got {arrays[name].shape}')
    if not np.all(np.isfinite(arrays[name])):
      raise ValueError(f'camera {name} has NaN or infinite values')
  r = arrays['rotation']
  if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
    raise ValueError('camera rotation is not a rotation matrix (R R^T != I or det < 0)')
  return Camera(**{k: jnp.asarray(v) for k, v in arrays.items()})


def look_at(eye, target, up=(0.0, 1.0, 0.0), focal_px: float = 2000.0,
            image_size=(1024, 1024)) -> Camera:
  """A camera at `eye` (mm) looking at `target`, image `up` roughly along world `up`.

  Args:
    focal_px: focal length in pixels (fx = fy).
    image_size: (width, height) px; the principal point is the image centre.
  """
  eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
  forward = target - eye
  forward /= np.linalg.norm(forward)
  right = np.cross(forward, up)
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  rotation = np.stack([right, down, forward])  # Rows: camera axes in world coordinates.
  translation = -rotation @ eye
  width, height = image_size
  intrinsics = np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0],
                         [0.0, 0.0, 1.0]])
  return make_camera(intrinsics, rotation, translation)


def project(camera: Camera, points: jnp.ndarray) -> jnp.ndarray:
  """(..., 3) mm world points -> (..., 2) px. Points must lie in front of the camera (z > 0)."""
  cam = jnp.einsum('ij,...j->...i', camera.rotation, points) + camera.translation
  z = jnp.maximum(cam[..., 2:3], 1e-3)
  k = camera.intrinsics
  uv = cam[..., :2] / z
  return jnp.stack([k[0, 0] * uv[..., 0] + k[0, 1] * uv[..., 1] + k[0, 2],
                    k[1, 1] * uv[..., 1] + k[1, 2]], axis=-1)


def apply_offset(camera: Camera, rot6d: jnp.ndarray, translation: jnp.ndarray) -> Camera:
  """The camera with its extrinsics composed with a learned offset (identity at rot6d = I)."""
  delta = geometry.rotation_from_6d(rot6d)
  return Camera(intrinsics=camera.intrinsics, rotation=delta @ camera.rotation,
                translation=delta @ camera.translation + translation)
