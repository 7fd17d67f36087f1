"""Tests of aim_jax/anatomy/bone_fit.py on analytic cases (no shared data needed); the depth
report (depths.py) measures the warps."""

import numpy as np
import pytest
import trimesh

from aim_jax.anatomy import bone_fit, depths


def _sphere(radius, subdivisions=3, scale=(1.0, 1.0, 1.0)):
  mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
  return np.asarray(mesh.vertices) * np.asarray(scale), np.asarray(mesh.faces)


def test_warp_reaches_target_depths_and_removes_penetration():
  # Skin: a sphere of radius 80 mm. Bone: an ellipsoid that pokes 6 mm out at +-x and lies
  # 10 mm deep at +-y and +-z.
  skin_v, skin_f = _sphere(80.0, 3)
  bone_v, bone_f = _sphere(1.0, 3, (86.0, 70.0, 70.0))
  skin_n = skin_v / np.linalg.norm(skin_v, axis=1, keepdims=True)
  bone = trimesh.Trimesh(bone_v, bone_f, process=False)
  before = depths.depth_report(bone, skin_v, skin_n, np.ones(len(skin_v), bool), None, 2.0)
  assert before['outside_fraction'] > 0.02

  directions = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
  targets = depths.DepthTargets(
      names=('top', 'front', 'bottom', 'back'), points=80.0 * directions, normals=directions,
      depths=np.array([5.0, 8.0, 14.0, 10.0]), weights=np.ones(4))
  settings = bone_fit.WarpSettings(margin_mm=2.0, sigma_mm=30.0, num_centers=150, iterations=8)
  result = bone_fit.fit_warp(bone_v, bone_f, skin_v, skin_n, np.ones(len(skin_v), bool),
                             targets, settings=settings, skin_faces=skin_f)
  warped = trimesh.Trimesh(result.vertices, bone_f, process=False)
  report = depths.depth_report(warped, skin_v, skin_n, np.ones(len(skin_v), bool), targets,
                                 2.0, skin_faces=skin_f)
  # Zero penetration and the whole margin, after the guaranteed-margin push.
  assert report['outside_fraction'] == 0.0
  assert report['bone_vertices_within_margin'] == 0
  assert report['min_depth_mm'] > 1.9
  assert result.push['violations_left'] == 0
  # Accepted rounds only lower the score.
  scores = [h['score'] for h in result.history]
  assert all(b < a for a, b in zip(scores, scores[1:]))
  for name, entry in report['landmarks'].items():
    assert entry['depth_mm'] == pytest.approx(entry['published_mm'], abs=1.0), name
  # Smooth: the warp moved the bone little where nothing asked for it (the ellipsoid's
  # diagonal directions stay within a few mm).
  assert np.abs(result.vertices - bone_v).max() < 20.0


def test_anchors_stay_put():
  skin_v, skin_f = _sphere(80.0, 2)
  bone_v, bone_f = _sphere(1.0, 2, (84.0, 70.0, 70.0))
  skin_n = skin_v / np.linalg.norm(skin_v, axis=1, keepdims=True)
  anchor = [int(np.argmax(bone_v[:, 2]))]
  settings = bone_fit.WarpSettings(sigma_mm=30.0, num_centers=100, iterations=5)
  result = bone_fit.fit_warp(bone_v, bone_f, skin_v, skin_n, np.ones(len(skin_v), bool), None,
                             anchor_index=anchor, settings=settings)
  assert np.linalg.norm(result.vertices[anchor] - bone_v[anchor]) < 0.5
  assert result.history[-1]['worst_margin_violation_mm'] < 0.5


def test_push_to_margin_removes_all_penetration_and_keeps_the_rest():
  # A flat skin sheet z = 0 (normal +z) over a bumpy bone plate at z = -10 whose bump pokes
  # 4 mm out of the skin; far from the bump the bone must not move.
  grid = np.linspace(-40.0, 40.0, 41)
  x, y = np.meshgrid(grid, grid)
  skin_v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], axis=1)
  quads = np.array([[i * 41 + j, i * 41 + j + 1, (i + 1) * 41 + j + 1, (i + 1) * 41 + j]
                    for i in range(40) for j in range(40)])
  skin_f = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
  skin_n = np.tile([0.0, 0.0, 1.0], (len(skin_v), 1))
  bone_v = skin_v.copy()
  bone_v[:, 2] = -10.0 + 14.0 * np.exp(-(x.ravel() ** 2 + y.ravel() ** 2) / (2 * 6.0 ** 2))
  settings = bone_fit.WarpSettings(margin_mm=2.0, slack_mm=0.5)
  vertices, summary = bone_fit.push_to_margin(bone_v, skin_f, skin_v, skin_f, skin_n,
                                              np.ones(len(skin_v), bool), settings)
  assert summary['violations_first'] > 0 and summary['violations_left'] == 0
  assert vertices[:, 2].max() <= -2.0 + 1e-6  # Every bone vertex at least the margin deep.
  far = np.hypot(skin_v[:, 0], skin_v[:, 1]) > 30.0
  np.testing.assert_allclose(vertices[far], bone_v[far])
  np.testing.assert_allclose(vertices[:, :2], bone_v[:, :2])  # Pushed along the normal only.
  report = depths.depth_report(trimesh.Trimesh(vertices, skin_f, process=False), skin_v,
                                 skin_n, np.ones(len(skin_v), bool), None, 2.0,
                                 skin_faces=skin_f)
  assert report['outside_fraction'] == 0.0 and report['bone_vertices_outside'] == 0
