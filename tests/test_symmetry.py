"""Mirror plane and symmetry map (aim_jax/data/symmetry.py) on the tiny grid, moved and turned."""

import numpy as np
from scipy.spatial.transform import Rotation
from tiny import tiny_neutral

from aim_jax import rigid_np
from aim_jax.data import symmetry


def test_symmetry_map_tolerance_and_reflect():
  neutral = tiny_neutral(6)
  plane = np.array([1.0, 0.0, 0.0, 0.0])
  shifted = neutral + [0.5, 0.0, 0.0]  # Mirror images land 1 mm from their partners.
  assert (symmetry.symmetry_map(shifted, plane, tolerance_mm=0.9) == -1).all()
  assert (symmetry.symmetry_map(shifted, plane, tolerance_mm=1.1) >= 0).all()
  np.testing.assert_allclose(symmetry.mirror_plane(shifted), [1, 0, 0, 0.5], atol=1e-6)
  points = np.array([[1.0, 2.0, 3.0]])
  tilted = np.array([0.0, 1.0, 0.0, 1.0])
  np.testing.assert_allclose(rigid_np.reflect(points, tilted), [[1.0, 0.0, 3.0]])
  np.testing.assert_allclose(rigid_np.reflect_direction(np.array([[0.0, 1.0, 0.0]]), tilted),
                             [[0.0, -1.0, 0.0]])


def test_mirror_plane_of_a_turned_face_and_its_pairs():
  neutral = tiny_neutral(12)
  rotation = Rotation.from_euler('yx', [20.0, 8.0], degrees=True).as_matrix()
  translation = np.array([3.0, -2.0, 7.0])
  moved = neutral @ rotation.T + translation
  plane = symmetry.mirror_plane(moved)
  normal = rotation @ np.array([1.0, 0.0, 0.0])  # The plane x = 0, turned and moved.
  np.testing.assert_allclose(plane, np.append(normal, normal @ translation), atol=1e-5)
  partner = symmetry.symmetry_map(moved, plane)
  # Row-major grid, columns mirrored: column c pairs with column 11 - c in the same row.
  rows, cols = np.divmod(np.arange(144), 12)
  np.testing.assert_array_equal(partner, rows * 12 + 11 - cols)
  np.testing.assert_array_equal(partner[partner], np.arange(144))  # An involution.
