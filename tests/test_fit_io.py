"""Fitting targets from files (aim_jax/fitting/io.py). The fit_sequence pipeline end to end:
tests/end_to_end/test_fit_command.py."""

import os

import numpy as np
import pytest

from aim_jax import mesh_io
from aim_jax.data import synthetic
from aim_jax.fitting import io as fit_io
from aim_jax.fitting import synthetic_targets


@pytest.fixture(scope='module')
def actor():
  return synthetic.make_synthetic_actor(resolution=24)


def _write_frames(folder, frames, faces, fmt='obj'):
  os.makedirs(folder, exist_ok=True)
  for j, frame in enumerate(frames):
    mesh_io.write_mesh(os.path.join(folder, f'frame_{j}.{fmt}'), frame, faces)


def test_folder_of_frames_natural_order_and_units(tmp_path, actor):
  frames = actor.shapes[:11]
  _write_frames(str(tmp_path / 'f'), frames / 10.0, actor.faces)
  targets, truth = fit_io.read_targets(str(tmp_path / 'f'), actor.faces, actor.num_vertices,
                                       units='cm')
  assert truth is None and set(targets) == {'dense'}
  np.testing.assert_allclose(np.asarray(targets['dense'].values), frames, atol=1e-3)


def test_npz_with_every_kind_and_ground_truth(tmp_path, actor):
  frames = actor.shapes[:3]
  markers = synthetic_targets.markers(actor.neutral, actor.faces, actor.region, frames, 20)
  cam = synthetic_targets.frontal_camera(actor.neutral)
  marks = synthetic_targets.landmarks(actor.neutral, actor.faces, actor.region, frames, cam, 30)
  faces_of = lambda t: np.asarray([np.nonzero((actor.faces == v).all(axis=1))[0][0]
                                   for v in np.asarray(t.points.vertices)])
  path = str(tmp_path / 't.npz')
  np.savez(path, frames=frames, markers=np.asarray(markers.values),
           marker_faces=faces_of(markers), marker_barycentric=np.asarray(markers.points.weights),
           landmarks=np.asarray(marks.values), landmark_faces=faces_of(marks),
           landmark_barycentric=np.asarray(marks.points.weights),
           landmark_visible=np.asarray(marks.visible), intrinsics=np.asarray(cam.intrinsics),
           camera_rotation=np.asarray(cam.rotation),
           camera_translation=np.asarray(cam.translation), gt_frames=frames)
  targets, truth = fit_io.read_targets(path, actor.faces, actor.num_vertices)
  assert set(targets) == {'dense', 'markers', 'landmarks'}
  np.testing.assert_allclose(np.asarray(targets['markers'].values), np.asarray(markers.values))
  assert truth['frames'].shape == frames.shape


@pytest.mark.parametrize('make, message', [
    (lambda v: dict(frames=np.zeros((2, 5, 3))), '5 vertices, but the actor has'),
    (lambda v: dict(frames=np.full((1, v, 3), np.nan)), 'NaN'),
    (lambda v: dict(markers=np.zeros((2, 3, 3))), 'marker_vertices'),
    (lambda v: dict(markers=np.zeros((2, 3, 3)), marker_vertices=np.array([0, 1, v])),
     'outside'),
    (lambda v: dict(markers=np.zeros((2, 2, 3)), marker_vertices=np.array([0, 1, 2])), 'shape'),
    (lambda v: dict(landmarks=np.zeros((2, 2, 2)), landmark_vertices=np.array([0, 1])),
     'camera'),
    (lambda v: dict(frames=np.zeros((1, v, 3)), units='inch'), 'units'),
    (lambda v: dict(other=np.zeros(3)), 'no targets'),
])
def test_bad_npz_targets_name_the_file(tmp_path, actor, make, message):
  arrays = make(actor.num_vertices)
  path = str(tmp_path / 'bad.npz')
  np.savez(path, **arrays)
  with pytest.raises(fit_io.TargetError, match=message) as err:
    fit_io.read_targets(path, actor.faces, actor.num_vertices)
  assert path in str(err.value) and '\n' not in str(err.value)


def test_bad_files_and_folders(tmp_path, actor):
  with pytest.raises(fit_io.TargetError, match='no such'):
    fit_io.read_targets(str(tmp_path / 'missing.npz'), actor.faces, actor.num_vertices)
  with pytest.raises(fit_io.TargetError, match='no .obj or .ply'):
    os.makedirs(tmp_path / 'empty')
    fit_io.read_targets(str(tmp_path / 'empty'), actor.faces, actor.num_vertices)
  _write_frames(str(tmp_path / 'small'), actor.shapes[:2, :-1], np.zeros((0, 3), int))
  with pytest.raises(fit_io.TargetError, match='topology'):
    fit_io.read_targets(str(tmp_path / 'small'), actor.faces, actor.num_vertices)
  (tmp_path / 'junk.npz').write_bytes(b'not a zip')
  with pytest.raises(fit_io.TargetError, match='unreadable'):
    fit_io.read_targets(str(tmp_path / 'junk.npz'), actor.faces, actor.num_vertices)
  with pytest.raises(fit_io.TargetError, match='unknown target format'):
    (tmp_path / 'x.txt').write_text('1')
    fit_io.read_targets(str(tmp_path / 'x.txt'), actor.faces, actor.num_vertices)


def test_frames_in_the_source_topology_are_cropped(tmp_path, actor):
  # The actor as cut from a larger mesh: its vertex i is vertex source[i] there.
  rng = np.random.default_rng(0)
  source = rng.permutation(actor.num_vertices + 50)[:actor.num_vertices]
  big = rng.normal(size=(3, actor.num_vertices + 50, 3)).astype(np.float32)
  big[:, source] = actor.shapes[:3]
  np.savez(tmp_path / 'big.npz', frames=big, gt_frames=big)
  targets, truth = fit_io.read_targets(str(tmp_path / 'big.npz'), actor.faces,
                                       actor.num_vertices, source_vertex_ids=source)
  np.testing.assert_allclose(np.asarray(targets['dense'].values), actor.shapes[:3])
  np.testing.assert_allclose(truth['frames'], actor.shapes[:3])
  _write_frames(str(tmp_path / 'meshes'), big, np.array([[0, 1, 2]]))
  frames = fit_io.read_mesh_frames(str(tmp_path / 'meshes'), actor.num_vertices,
                                   source_vertex_ids=source)
  np.testing.assert_allclose(frames, actor.shapes[:3], atol=1e-5)
  with pytest.raises(fit_io.TargetError, match='big.npz: .* vertices, but the actor has'):
    fit_io.read_targets(str(tmp_path / 'big.npz'), actor.faces, actor.num_vertices)


def test_ground_truth_reads_the_targets_key_names(tmp_path, actor):
  frames = actor.shapes[:2]
  rotation = np.repeat(np.eye(3, dtype=np.float32)[None], 2, axis=0)
  np.savez(tmp_path / 'gt.npz', gt_frames=frames, gt_jaw_rotation=rotation,
           gt_jaw_translation=np.zeros((2, 3), np.float32))
  truth = fit_io.read_ground_truth(str(tmp_path / 'gt.npz'), actor.num_vertices, 2)
  np.testing.assert_allclose(truth['frames'], frames)
  assert truth['jaw_rotation'].shape == (2, 3, 3)
  np.savez(tmp_path / 'none.npz', frames=np.zeros((0, actor.num_vertices, 3)))
  with pytest.raises(fit_io.TargetError, match='none.npz: no frames'):
    fit_io.read_targets(str(tmp_path / 'none.npz'), actor.faces, actor.num_vertices)
