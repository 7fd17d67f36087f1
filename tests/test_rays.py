"""Ray casting (aim_jax/anatomy/rays.py) on two stacked squares: first hits, distances, facing."""

import numpy as np
import pytest

from aim_jax.anatomy import rays


def _two_squares():
  """Two 20 x 20 mm squares facing +z (counter-clockwise seen from +z): at z = 0 (triangles 0, 1)
  and z = -3 (triangles 2, 3)."""
  corners = np.array([[-10.0, -10.0], [10.0, -10.0], [10.0, 10.0], [-10.0, 10.0]])
  top = np.concatenate([corners, np.zeros((4, 1))], axis=1)
  bottom = np.concatenate([corners, np.full((4, 1), -3.0)], axis=1)
  faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
  return rays.as_trimesh(np.concatenate([top, bottom]), faces)


def test_as_trimesh_keeps_vertices_and_faces_as_given():
  vertices = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  faces = np.array([[0, 1, 3], [2, 1, 3]])  # Vertex 2 duplicates vertex 0: no merging.
  mesh = rays.as_trimesh(vertices, faces)
  np.testing.assert_array_equal(mesh.vertices, vertices)
  np.testing.assert_array_equal(mesh.faces, faces)


@pytest.mark.parametrize('chunk', [65536, 1])
def test_first_hits_are_the_nearest_surface_along_each_ray(chunk):
  mesh = _two_squares()
  origins = np.array([[2.0, 3.0, 5.0],     # Above: meets the top square first.
                      [-4.0, 1.0, -8.0],   # Below, looking up: meets the bottom square first.
                      [30.0, 0.0, 5.0],    # Beside the squares: misses.
                      [2.0, 3.0, 5.0]])    # Above, looking up: misses.
  directions = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
  hit, triangle, location = rays.first_hits(mesh, origins, directions, chunk=chunk)
  np.testing.assert_array_equal(hit, [True, True, False, False])
  assert triangle[0] in (0, 1) and triangle[1] in (2, 3)
  np.testing.assert_array_equal(triangle[2:], -1)
  np.testing.assert_allclose(location, [[2.0, 3.0, 0.0], [-4.0, 1.0, -3.0], [0, 0, 0], [0, 0, 0]],
                             atol=1e-9)
  hit, distance, facing = rays.first_hit_distances(mesh, origins, directions, chunk=chunk)
  np.testing.assert_allclose(distance[:2], [5.0, 5.0], atol=1e-9)
  assert np.all(np.isinf(distance[2:]))
  # Going down the ray meets the squares' front (facing -1); going up, their back (+1).
  np.testing.assert_allclose(facing, [-1.0, 1.0, 0.0, 0.0], atol=1e-9)


def test_oblique_ray_distance_is_along_the_ray():
  mesh = _two_squares()
  direction = np.array([[3.0, 0.0, -4.0]]) / 5.0
  _, distance, _ = rays.first_hit_distances(mesh, np.array([[0.0, 0.0, 4.0]]), direction)
  np.testing.assert_allclose(distance, [5.0], atol=1e-9)  # 4 mm down at 4/5 per mm: 5 mm.
