"""Soft-tissue depths (aim_jax/anatomy/depths.py) on analytic cases: ray depths under a sphere,
closest-point depths through a hole in one."""

import numpy as np
import pytest
import trimesh

from aim_jax.anatomy import depths


def _sphere(radius, subdivisions=3, scale=(1.0, 1.0, 1.0)):
  mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
  return np.asarray(mesh.vertices) * np.asarray(scale), np.asarray(mesh.faces)


def test_skin_depths_signs():
  bone_v, bone_f = _sphere(70.0)
  bone = trimesh.Trimesh(bone_v, bone_f, process=False)
  normals = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
  points = np.array([[0.0, 0.0, 80.0], [0.0, 0.0, 65.0], [0.0, 200.0, 80.0]])
  depth = depths.skin_depths(bone, points, normals)
  assert depth[0] == pytest.approx(10.0, abs=0.3)  # Bone 10 mm under the skin.
  assert depth[1] == pytest.approx(-5.0, abs=0.3)  # The skin point is 5 mm inside the bone.
  assert np.isnan(depth[2])  # No bone under it.


def test_closest_depths_find_bone_through_a_hole():
  # A sphere with a hole under the skin point: the ray along the normal misses the bone, the
  # closest-point depth still finds the rim.
  bone_v, bone_f = _sphere(70.0, 3)
  keep = ~(bone_v[bone_f].mean(axis=1)[:, 2] > 66.0)
  bone = trimesh.Trimesh(bone_v, bone_f[keep], process=False)
  point, normal = np.array([[0.0, 0.0, 80.0]]), np.array([[0.0, 0.0, 1.0]])
  assert depths.skin_depths(bone, point, normal, max_distance_mm=30.0)[0] != pytest.approx(
      10.0, abs=1.0)
  depth = depths.closest_depths(bone, point)[0]
  assert 10.0 < depth < 30.0  # The rim, about 22 mm away.
