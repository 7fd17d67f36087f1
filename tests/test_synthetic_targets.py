"""Targets made from known frames (aim_jax/fitting/synthetic_targets.py) on the tiny actor:
markers on the surface, a frontal camera that frames the face, landmark visibility."""

import jax.numpy as jnp
import numpy as np
import pytest

from aim_jax import rigid_np
from aim_jax.data import synthetic_performance
from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import synthetic_targets
from aim_jax.fitting import targets as targets_lib


def test_surface_samples_lie_on_region_triangles_away_from_the_edges(tiny_actor):
  faces, bary = synthetic_targets.surface_samples(tiny_actor.neutral, tiny_actor.faces,
                                                  tiny_actor.region, 25, seed=0)
  assert faces.shape == (25,) and bary.shape == (25, 3)
  assert len(set(faces.tolist())) == 25  # Farthest-point sampled: distinct triangles.
  assert tiny_actor.region[tiny_actor.faces[faces]].all()
  np.testing.assert_allclose(bary.sum(axis=1), 1.0)
  assert bary.min() > 0.0


def test_markers_count_and_lie_on_the_surface_of_every_frame(tiny_actor):
  frames = tiny_actor.shapes
  markers = synthetic_targets.markers(tiny_actor.neutral, tiny_actor.faces, tiny_actor.region,
                                      frames, count=20, seed=1)
  assert markers.kind == 'markers' and markers.points.count == 20
  assert markers.values.shape == (3, 20, 3)
  np.testing.assert_array_equal(markers.visible, np.ones((3, 20)))
  # On the surface: each value is its barycentric point of the frame's triangle ...
  corners = np.asarray(frames)[:, np.asarray(markers.points.vertices)]  # (F, M, 3, 3)
  on_surface = targets_lib.interpolate(markers.points, jnp.asarray(corners))
  np.testing.assert_allclose(markers.values, on_surface, atol=1e-4)
  # ... so it lies in the triangle's plane, strictly inside it.
  normal = np.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])
  normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
  height = np.einsum('fmd,fmd->fm', np.asarray(markers.values) - corners[:, :, 0], normal)
  np.testing.assert_allclose(height, 0.0, atol=1e-4)
  # Noise moves the markers off the surface by about its standard deviation.
  noisy = synthetic_targets.markers(tiny_actor.neutral, tiny_actor.faces, tiny_actor.region,
                                    frames, count=20, noise_mm=0.5, seed=1)
  np.testing.assert_array_equal(noisy.points.vertices, markers.points.vertices)
  offset = np.asarray(noisy.values) - np.asarray(markers.values)
  assert 0.3 < offset.std() < 0.7


def test_frontal_camera_looks_at_the_face_centre_and_frames_it(tiny_actor):
  neutral = tiny_actor.neutral
  camera = synthetic_targets.frontal_camera(neutral, distance_mm=600.0, image_size=(1024, 768),
                                            fill=0.8)
  center = 0.5 * (neutral.min(axis=0) + neutral.max(axis=0))
  rotation = np.asarray(camera.rotation, np.float64)
  eye = -rotation.T @ np.asarray(camera.translation, np.float64)
  np.testing.assert_allclose(eye, center + [0.0, 0.0, 600.0], atol=1e-3)
  np.testing.assert_allclose(rotation[2], [0.0, 0.0, -1.0], atol=1e-6)  # Looking along -z.
  # The centre projects to the image centre; the face's larger extent (100 mm tall) at the
  # centre's depth spans `fill` of the smaller image side, +y up in the image.
  half = 0.5 * (neutral.max(axis=0)[1] - neutral.min(axis=0)[1])
  uv = np.asarray(camera_lib.project(camera, jnp.asarray(
      np.stack([center, center + [0.0, half, 0.0], center - [0.0, half, 0.0]]), jnp.float32)))
  np.testing.assert_allclose(uv[0], [512.0, 384.0], atol=1e-2)
  np.testing.assert_allclose(uv[2, 1] - uv[1, 1], 0.8 * 768, rtol=1e-4)
  every = np.asarray(camera_lib.project(camera, jnp.asarray(neutral, jnp.float32)))
  assert (every >= 0).all() and (every[:, 0] < 1024).all() and (every[:, 1] < 768).all()


def test_landmarks_are_projected_and_hidden_when_their_triangle_faces_away(tiny_actor):
  neutral = tiny_actor.neutral
  camera = synthetic_targets.frontal_camera(neutral)
  center = 0.5 * (neutral.min(axis=0) + neutral.max(axis=0))
  # Frame 1: the face turned 180 degrees about the vertical axis, its back to the camera.
  half_turn = np.diag([-1.0, 1.0, -1.0])
  turned = rigid_np.rigid_about_pivot(neutral, half_turn, np.zeros(3), center)
  frames = np.stack([neutral, turned])
  marks = synthetic_targets.landmarks(neutral, tiny_actor.faces, tiny_actor.region, frames,
                                      camera, count=30, noise_px=0.0, seed=2)
  assert marks.kind == 'landmarks' and marks.points.count == 30 and marks.camera is camera
  np.testing.assert_array_equal(marks.visible, [np.ones(30), np.zeros(30)])
  corners = np.asarray(neutral)[np.asarray(marks.points.vertices)]  # (M, 3, 3)
  world = targets_lib.interpolate(marks.points, jnp.asarray(corners, jnp.float32))
  np.testing.assert_allclose(marks.values[0], camera_lib.project(camera, world), atol=1e-2)
  np.testing.assert_array_equal(marks.values[1], np.zeros((30, 2)))  # Hidden: stored as 0.


def test_dropouts_come_in_runs_at_about_the_fraction_asked_and_every_marker_is_seen():
  missing = synthetic_targets.dropouts(200, 50, 0.2, seed=3)
  assert 0.12 < missing.mean() < 0.28
  assert (~missing).any(axis=0).all()
  starts = (missing[1:] & ~missing[:-1]).sum()
  assert missing.sum() / max(starts, 1) > 2.0  # Runs of several frames, not single frames.
  assert not synthetic_targets.dropouts(10, 5, 0.0, seed=0).any()
  np.testing.assert_array_equal(missing, synthetic_targets.dropouts(200, 50, 0.2, seed=3))
  with pytest.raises(ValueError, match='dropout fraction'):
    synthetic_targets.dropouts(10, 5, 1.0, seed=0)


def test_condition_targets_hide_dropped_markers_and_name_the_condition(tiny_actor):
  frames = np.repeat(tiny_actor.shapes[:1], 40, axis=0)
  condition = synthetic_targets.Condition('markers', 12, 0.3, 0.2)
  assert condition.name == 'markers12_noise0.3mm_drop20'
  targets = synthetic_targets.condition_targets(condition, tiny_actor.neutral, tiny_actor.faces,
                                                tiny_actor.region, frames, seed=1)
  visible = np.asarray(targets['markers'].visible)
  assert 0.05 < 1.0 - visible.mean() < 0.4
  assert set(synthetic_targets.condition_targets(
      synthetic_targets.Condition('dense'), tiny_actor.neutral, tiny_actor.faces,
      tiny_actor.region, frames)) == {'dense'}
  with pytest.raises(ValueError, match='condition kind'):
    synthetic_targets.condition_targets(synthetic_targets.Condition('scan'), tiny_actor.neutral,
                                        tiny_actor.faces, tiny_actor.region, frames)


def test_markers_and_landmarks_of_frames_played_on_demand_are_the_same(actor):
  performance = synthetic_performance.stream_performance(actor, num_frames=230, seed=2)
  frames = np.asarray(performance.frames)
  args = (actor.neutral, actor.faces, actor.region)
  exact = synthetic_targets.markers(*args, frames, count=30, seed=3)
  faces, bary = synthetic_targets.surface_samples(*args, 30, 3)
  whole = np.einsum('fmkd,mk->fmd', frames[:, actor.faces[faces]], bary)  # All frames at once.
  np.testing.assert_array_equal(exact.values, whole.astype(np.float32))
  for source in (frames, performance.frames):  # Read 100 frames at a time either way.
    noisy = synthetic_targets.markers(*args, source, count=30, noise_mm=0.2, seed=3,
                                      dropout=0.1)
    if source is frames:
      reference = noisy
    np.testing.assert_array_equal(noisy.values, reference.values)
    np.testing.assert_array_equal(noisy.visible, reference.visible)
  camera = synthetic_targets.frontal_camera(actor.neutral)
  seen = [synthetic_targets.landmarks(*args, source, camera, count=80, seed=1)
          for source in (frames, performance.frames)]
  np.testing.assert_array_equal(seen[0].values, seen[1].values)
  np.testing.assert_array_equal(seen[0].visible, seen[1].visible)
  assert seen[0].values.shape == (230, 80, 2)
