"""Sparse anatomical constraints (A.1) by ray casting on analytic shapes."""

import numpy as np
import pytest
import trimesh

from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data.actor import Mesh, make_actor


def _sphere(radius, center=(0.0, 0.0, 0.0), subdivisions=4, inward=False):
  mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
  faces = mesh.faces[:, ::-1] if inward else mesh.faces
  return Mesh(np.asarray(mesh.vertices) + np.asarray(center), np.asarray(faces))


def _sphere_actor(skull_center=(0.0, 0.0, 0.0), inward=False):
  skin = _sphere(100.0)
  shapes = np.stack([skin.vertices, skin.vertices * 1.01])
  return make_actor('spheres', shapes, ['neutral', 'inflate'], skin.faces,
                    skull=_sphere(90.0, skull_center, inward=inward),
                    mandible=_sphere(5.0, (0.0, 0.0, 0.0), subdivisions=1),
                    pivot=np.zeros(3))


@pytest.mark.parametrize('inward', [False, True])
def test_concentric_spheres_give_uniform_thickness(inward):
  # Winding of the bone mesh must not matter: it is oriented outward first.
  actor = _sphere_actor(inward=inward)
  c = constraints_lib.compute_constraints(actor, max_depth_mm=40.0)
  assert c.fraction > 0.95
  np.testing.assert_allclose(c.thickness, 10.0, atol=0.3)
  np.testing.assert_allclose(np.linalg.norm(c.bone_point, axis=-1), 90.0, atol=0.3)
  radial = c.bone_point / np.linalg.norm(c.bone_point, axis=-1, keepdims=True)
  assert np.min(np.sum(radial * c.bone_normal, axis=-1)) > 0.999
  assert np.all(c.bone_id == constraints_lib.CRANIUM)


def test_skin_point_is_bone_plus_thickness_times_normal():
  # An off-centre bone: the second ray lands at another skin point than the one that cast.
  actor = _sphere_actor(skull_center=(0.0, 8.0, 0.0))
  c = constraints_lib.compute_constraints(actor, max_depth_mm=60.0)
  assert c.count > 0
  np.testing.assert_allclose(c.points, c.bone_point + c.thickness[:, None] * c.bone_normal,
                             atol=1e-3)
  np.testing.assert_allclose(np.linalg.norm(c.points, axis=-1), 100.0, atol=0.5)
  # Thin on top (bone shifted up by 8 mm: ~2 mm), thick below (~18 mm).
  top = c.points[:, 1] > 80
  bottom = c.points[:, 1] < -80
  assert c.thickness[top].mean() < 4 < 16 < c.thickness[bottom].mean()


def test_max_depth_and_source_fraction():
  actor = _sphere_actor()
  assert constraints_lib.compute_constraints(actor, max_depth_mm=5.0).count == 0
  full = constraints_lib.compute_constraints(actor)
  thin = constraints_lib.compute_constraints(actor, source_fraction=0.1, seed=3)
  assert 0.05 < thin.count / full.count < 0.15
  again = constraints_lib.compute_constraints(actor, source_fraction=0.1, seed=3)
  np.testing.assert_array_equal(thin.points, again.points)


def test_untrusted_vertices_cast_no_ray(tmp_path):
  actor = _sphere_actor()
  trusted = actor.neutral[:, 1] > 0
  actor = make_actor('spheres', actor.shapes, actor.shape_names, actor.faces, actor.skull,
                     actor.mandible, actor.pivot, trusted=trusted)
  c = constraints_lib.compute_constraints(actor)
  assert c.count > 0 and np.all(c.points[:, 1] > -5.0)
  path = tmp_path / 'c.npz'
  c.to_npz(path)
  back = constraints_lib.SparseConstraints.from_npz(path)
  np.testing.assert_array_equal(back.points, c.points)
  assert back.num_vertices == c.num_vertices


def test_synthetic_constraints_match_ground_truth():
  from aim_jax.data import synthetic
  actor = synthetic.make_synthetic_actor(resolution=32)
  c = constraints_lib.compute_constraints(actor, source_fraction=1.0)
  check = constraints_lib.check_against_ground_truth(actor, c)
  assert check['count'] > 100
  assert check['bone_mm'] < 1.0 and check['thickness_mm'] < 0.5 and check['normal_deg'] < 3.0
  assert check['bone_id_agreement'] > 0.9
