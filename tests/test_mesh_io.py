"""Tests of aim_jax/mesh_io.py: round trips and one-line errors naming the file."""

import numpy as np
import pytest

from aim_jax import mesh_io
from aim_jax.data.actor import ActorError


def _mesh():
  """A tetrahedron plus an unreferenced vertex and a coincident copy of vertex 0."""
  vertices = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0],
                       [5.0, 5.0, 5.0], [0.0, 0.0, 0.0]], np.float32).astype(np.float64)
  vertices[1, 0] = np.float32(10.123456789)  # Needs all 9 significant digits in OBJ text.
  faces = np.array([[0, 2, 1], [5, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64)
  colors = np.random.default_rng(0).integers(0, 256, (len(vertices), 4)).astype(np.uint8)
  return vertices, faces, colors


@pytest.mark.parametrize('extension', ['obj', 'ply'])
def test_plain_round_trip_keeps_order_count_and_values(tmp_path, extension):
  vertices, faces, _ = _mesh()
  file = str(tmp_path / f'mesh.{extension}')
  mesh_io.write_mesh(file, vertices, faces)
  read_vertices, read_faces = mesh_io.read_mesh(file)
  assert read_vertices.dtype == np.float64 and read_faces.dtype == np.int64
  np.testing.assert_array_equal(read_faces, faces)
  assert read_vertices.shape == vertices.shape  # Unreferenced and duplicated vertices kept.
  # float32 values come back exactly (as float32).
  np.testing.assert_array_equal(read_vertices.astype(np.float32), vertices.astype(np.float32))
  scaled, _ = mesh_io.read_mesh(file, scale=10.0)
  np.testing.assert_allclose(scaled, 10.0 * read_vertices)


def test_obj_reader_fan_triangulates_and_counts_negative_indices(tmp_path):
  file = tmp_path / 'quad.obj'
  file.write_text('v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 4/1\nf -4 -2 -1\n')
  vertices, faces = mesh_io.read_mesh(str(file))
  assert vertices.shape == (4, 3)
  np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])


@pytest.mark.parametrize('extension', ['obj', 'ply'])
def test_colored_round_trip_with_and_without_colours(tmp_path, extension):
  vertices, faces, colors = _mesh()
  file = str(tmp_path / 'sub' / f'colored.{extension}')  # Parent folder is created.
  mesh_io.write_colored_mesh(file, vertices, faces, colors)
  read_vertices, read_faces, read_colors = mesh_io.read_colored_mesh(file)
  np.testing.assert_array_equal(read_faces, faces)
  np.testing.assert_allclose(read_vertices, vertices, atol=1e-5)
  channels = 4 if extension == 'ply' else 3  # OBJ stores no alpha.
  np.testing.assert_array_equal(read_colors[:, :channels], colors[:, :channels])

  plain = str(tmp_path / f'plain.{extension}')
  mesh_io.write_colored_mesh(plain, vertices, faces)
  read_vertices, read_faces, read_colors = mesh_io.read_colored_mesh(plain)
  assert read_colors is None and read_vertices.shape == vertices.shape
  np.testing.assert_array_equal(read_faces, faces)


def _expect_one_line(file, match):
  with pytest.raises(ActorError, match=match) as info:
    mesh_io.read_mesh(file)
  assert isinstance(info.value, mesh_io.MeshFileError)
  message = str(info.value)
  assert '\n' not in message and message.startswith(file + ': ')
  return message


@pytest.mark.parametrize('extension', ['obj', 'ply'])
def test_truncated_file_gives_a_one_line_error_naming_the_file(tmp_path, extension):
  vertices, faces, _ = _mesh()
  file = str(tmp_path / f'mesh.{extension}')
  mesh_io.write_mesh(file, vertices, faces)
  with open(file, 'rb') as f:
    data = f.read()
  with open(file, 'wb') as f:
    f.write(data[:len(data) // 2] if extension == 'ply' else data[:-4])  # OBJ: 'f 2 ' last.
  _expect_one_line(file, 'unreadable mesh' if extension == 'ply' else 'bad face')


def test_other_problems_give_one_line_errors(tmp_path):
  missing = str(tmp_path / 'missing.obj')
  _expect_one_line(missing, 'unreadable mesh')
  _expect_one_line(str(tmp_path / 'mesh.stl'), "unknown mesh format '.stl'")
  bad = tmp_path / 'bad.obj'
  bad.write_text('v 0 0 0\nv 1 0 nan\nv 0 1 0\nf 1 2 3\n')
  _expect_one_line(str(bad), r'NaN/inf coordinates in 1 vertex\(es\), first vertex 1')
  bad.write_text('v 0 0\n')
  _expect_one_line(str(bad), 'line 1: bad vertex')
  with pytest.raises(ValueError, match='unsupported mesh extension'):
    mesh_io.write_colored_mesh(str(tmp_path / 'mesh.stl'), *_mesh()[:2])
