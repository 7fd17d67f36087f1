"""aim_jax/anatomy_quality.py on tiny analytic cases: asymmetry, flipped triangles, roughness,
Rhine depths, and the figures of the synthetic actor's own ground truth."""

import dataclasses

import numpy as np
import pytest
import trimesh
from tiny import grid_faces, make_tiny_actor

from aim_jax import anatomy_quality as quality
from aim_jax.anatomy import depths


def _flat_strip(cols: int = 6):
  """A flat 2 x cols vertex strip in z = 0 (unit spacing, normals +z) and its triangles."""
  y, x = np.meshgrid(np.arange(2.0), np.arange(float(cols)), indexing='ij')
  skin = np.stack([x, y, np.zeros_like(x)], -1).reshape(-1, 3)
  return skin, grid_faces(2, cols)


def test_symmetric_fields_have_zero_asymmetry():
  actor = make_tiny_actor()
  x = actor.neutral[:, 0]
  thickness = 8.0 + np.cos(x / 10.0)  # Even in x: symmetric.
  bone = actor.neutral - np.array([0.0, 0.0, 1.0]) * thickness[:, None]
  assert quality.scalar_asymmetry(thickness, actor.symmetry)['mean'] == pytest.approx(0.0)
  assert quality.point_asymmetry(bone, actor.symmetry, actor.mirror_plane)['p95'] == (
      pytest.approx(0.0, abs=1e-9))


def test_asymmetric_fields_have_the_known_asymmetry():
  actor = make_tiny_actor()
  left = actor.neutral[:, 0] > 0
  thickness = np.where(left, 5.0, 3.0)  # Every pair differs by 2 mm.
  figures = quality.scalar_asymmetry(thickness, actor.symmetry, actor.region)
  assert figures['mean'] == pytest.approx(2.0)
  assert figures['p95'] == pytest.approx(2.0)
  assert figures['count'] == actor.region.sum()
  # Every bone point shifted 3 mm to the left: the mirror image of the partner's point lies
  # 3 mm to the right of where it should, so each point is 6 mm from it.
  bone = actor.neutral - [0.0, 0.0, 10.0] + [3.0, 0.0, 0.0]
  figures = quality.point_asymmetry(bone, actor.symmetry, actor.mirror_plane)
  assert figures['mean'] == pytest.approx(6.0)
  assert figures['p95'] == pytest.approx(6.0)


def test_asymmetry_skips_vertices_without_a_partner():
  symmetry = np.array([1, 0, -1])
  thickness = np.array([1.0, 2.0, 100.0])
  assert quality.scalar_asymmetry(thickness, symmetry)['mean'] == pytest.approx(1.0)
  assert list(quality.mirror_vertices(symmetry, np.array([True, False, True]))) == []


def test_folded_strip_has_exactly_the_folded_triangles_flipped():
  skin, faces = _flat_strip(cols=6)
  bone = skin - [0.0, 0.0, 5.0]
  assert not quality.flipped_triangles(bone, skin, faces).any()
  # Fold two corner vertices, each in one triangle only, over that triangle's diagonal: the
  # top-left corner (0, 1) of triangle (0,0)-(1,1)-(0,1) and the bottom-right corner (5, 0) of
  # triangle (4,0)-(5,0)-(5,1).
  folded = bone.copy()
  folded[6, :2] = [1.0, -0.5]
  folded[5, :2] = [3.5, 1.0]
  flipped = quality.flipped_triangles(folded, skin, faces)
  assert flipped.sum() == 2
  corner_triangles = np.flatnonzero((faces == 6).any(1) | (faces == 5).any(1))
  assert sorted(np.flatnonzero(flipped)) == sorted(corner_triangles)
  # A mirrored bone surface is flipped everywhere.
  mirrored = bone * [-1.0, 1.0, 1.0]
  assert quality.flipped_triangles(mirrored, skin, faces).all()


def test_flipped_percent_of_an_actor_counts_region_triangles():
  actor = make_tiny_actor()
  bone = actor.neutral - [0.0, 0.0, 10.0]
  thickness = np.full(actor.num_vertices, 10.0)
  figures = quality.field_quality(bone, thickness, actor)
  assert figures['flipped_triangles'] == 0
  mirrored = bone * [1.0, -1.0, 1.0]  # Upside down: every triangle flips.
  figures = quality.field_quality(mirrored, thickness, actor)
  num = 12
  assert figures['flipped_triangles'] == 2 * (num - 1) * (num - 3)  # Region: columns 1..10.
  assert figures['flipped_triangles_percent'] == pytest.approx(100.0)


def test_roughness_of_constant_and_ramp_fields():
  skin, faces = _flat_strip(cols=3)
  assert len(quality.mesh_edges(faces)) == 4 + 3 + 2  # Horizontal, vertical, diagonal.
  assert quality.roughness(np.full(len(skin), 7.0), faces) == 0.0
  # A ramp of 0.5 mm per column: horizontal and diagonal edges differ by 0.5, vertical by 0.
  ramp = 0.5 * skin[:, 0]
  assert quality.roughness(ramp, faces) == pytest.approx(0.5 * (4 + 2) / 9)
  actor = make_tiny_actor()
  column = np.arange(actor.num_vertices) % 12
  # Inside the region (columns 1..10, a 12 x 10 grid): 108 horizontal, 110 vertical and 99
  # diagonal edges.
  assert quality.roughness(0.5 * column, actor.faces, actor.region) == pytest.approx(
      0.5 * (108 + 99) / (108 + 110 + 99))


def test_rhine_depths_of_an_actor_with_source_vertex_ids():
  actor = make_tiny_actor()
  ids = 100000 + np.arange(actor.num_vertices)
  ids[5] = quality.RHINE['glabella'][0]  # 4.5 mm published.
  ids[20] = quality.RHINE['nasion'][0]   # 7.0 mm published.
  ict_like = dataclasses.replace(actor, source_vertex_ids=ids)
  thickness = np.full(actor.num_vertices, 6.0)
  rhine = quality.rhine_depths(thickness, ids)
  assert rhine['count'] == 2
  assert set(rhine['per_landmark']) == {'glabella', 'nasion'}
  assert rhine['per_landmark']['glabella']['error_mm'] == pytest.approx(1.5)
  assert rhine['per_landmark']['nasion']['error_mm'] == pytest.approx(-1.0)
  assert rhine['mean_abs_error_mm'] == pytest.approx(1.25)
  fields = {'bone': actor.neutral - [0.0, 0.0, 6.0], 'thickness': thickness}
  assert quality.anatomy_quality(fields, ict_like)['rhine_depth'] == rhine
  assert 'rhine_depth' not in quality.anatomy_quality(fields, actor)
  assert quality.rhine_depths(thickness, 100000 + np.arange(actor.num_vertices)) is None


def test_ground_truth_of_the_synthetic_actor_looks_plausible(actor):
  gt = actor.ground_truth
  fields = {'bone': gt.bone_point, 'thickness': gt.thickness}
  figures = quality.anatomy_quality(fields, actor)
  truth = figures['ground_truth']
  assert truth['thickness_asymmetry_mm']['p95'] < 0.1
  assert truth['bone_asymmetry_mm']['p95'] < 0.1
  assert truth['flipped_triangles'] == 0
  assert 0.0 < truth['thickness_roughness_mm'] < 3.0
  assert figures['thickness_roughness_vs_truth'] == pytest.approx(1.0)
  # A noisy anatomy reads worse than the truth on every figure.
  noise = np.random.default_rng(0).normal(0.0, 2.0, actor.num_vertices)
  noisy = quality.anatomy_quality(
      {'bone': gt.bone_point - gt.bone_normal * noise[:, None],
       'thickness': gt.thickness + noise}, actor)
  assert noisy['thickness_asymmetry_mm']['mean'] > 1.0
  assert noisy['bone_asymmetry_mm']['mean'] > 1.0
  assert noisy['thickness_roughness_vs_truth'] > 1.5


def test_bone_mesh_figures_read_the_closest_bone_point():
  # A flat plate as the skull 10 mm behind the tiny actor's skin (z = 0) and the mandible far
  # away: every vertex's depth is its height above the plate, straight behind it.
  actor = make_tiny_actor()
  lo, hi = actor.neutral.min(0) - 20.0, actor.neutral.max(0) + 20.0
  plate = trimesh.creation.box(extents=(hi[0] - lo[0], hi[1] - lo[1], 2.0))
  plate.apply_translation(((hi[0] + lo[0]) / 2, (hi[1] + lo[1]) / 2,
                           actor.neutral[:, 2].min() - 11.0))
  plate = plate.subdivide_to_size(5.0)
  far = trimesh.creation.icosphere(radius=5.0)
  far.apply_translation((0.0, 0.0, -500.0))
  mesh = type(actor.skull)
  plated = dataclasses.replace(actor, skull=mesh(plate.vertices, plate.faces),
                               mandible=mesh(far.vertices, far.faces))
  bone, depth = depths.closest_bone_fields(plated)
  expected = actor.neutral[:, 2] - (actor.neutral[:, 2].min() - 10.0)
  np.testing.assert_allclose(depth, expected, atol=1e-6)
  np.testing.assert_allclose(bone[:, :2], actor.neutral[:, :2], atol=1e-6)
  figures = quality.anatomy_quality({'bone': bone, 'thickness': depth}, plated)
  assert figures['bone_meshes']['thickness_asymmetry_mm']['mean'] == pytest.approx(
      figures['thickness_asymmetry_mm']['mean'])
