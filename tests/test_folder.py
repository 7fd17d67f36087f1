"""Actor folders: save/load round trips, quads, every error path, and safe overwrites."""

import dataclasses
import json
import os

import numpy as np
import pytest
from helpers import file_hashes
from tiny import TINY_PIVOT, box_mesh, make_tiny_actor, tiny_neutral

from aim_jax import mesh_io
from aim_jax.data import ActorError, GroundTruth, folder, load_actor_source
from aim_jax.data.folder import estimate_pivot, load_actor, save_actor
from aim_jax.mesh_io import read_mesh


def _assert_same_actor(loaded, actor, atol=0.0):
  np.testing.assert_allclose(loaded.shapes, actor.shapes, rtol=0, atol=atol)
  assert loaded.shapes.dtype == np.float32
  np.testing.assert_array_equal(loaded.faces, actor.faces)
  assert loaded.shape_names == actor.shape_names
  assert loaded.name == actor.name
  np.testing.assert_allclose(loaded.pivot, actor.pivot, rtol=0, atol=max(atol, 1e-5))
  for bone in ('skull', 'mandible'):
    np.testing.assert_allclose(getattr(loaded, bone).vertices, getattr(actor, bone).vertices,
                               rtol=0, atol=atol)
    np.testing.assert_array_equal(getattr(loaded, bone).faces, getattr(actor, bone).faces)
  np.testing.assert_array_equal(loaded.trusted, actor.trusted)
  np.testing.assert_array_equal(loaded.region, actor.region)
  np.testing.assert_array_equal(loaded.symmetry, actor.symmetry)
  np.testing.assert_allclose(loaded.mirror_plane, actor.mirror_plane, atol=1e-5)


def _expect(match, build):
  """Asserts build() raises a one-line ActorError matching `match`; returns the message."""
  with pytest.raises(ActorError, match=match) as info:
    build()
  message = str(info.value)
  assert '\n' not in message
  return message


@pytest.fixture
def saved(tiny_actor, tmp_path):
  """The tiny actor saved (mm, OBJ) in tmp_path/tiny; returns the folder path."""
  return save_actor(tiny_actor, str(tmp_path / 'tiny'))


def _write_json(path, **settings):
  with open(os.path.join(path, 'actor.json'), 'w') as f:
    json.dump(settings, f)


def _edit_json(path, **changes):
  with open(os.path.join(path, 'actor.json')) as f:
    settings = json.load(f)
  settings.update(changes)
  _write_json(path, **settings)


# Round trips.


def test_round_trip_mm_obj_is_exact(tiny_actor, saved):
  assert sorted(os.listdir(saved)) == ['actor.json', 'expressions', 'mandible.obj',
                                       'neutral.obj', 'region.npy', 'skull.obj', 'trusted.npy']
  assert sorted(os.listdir(os.path.join(saved, 'expressions'))) == ['jaw_open.obj', 'smile.obj']
  loaded = load_actor(saved)
  _assert_same_actor(loaded, tiny_actor)
  assert loaded.source == saved and loaded.ground_truth is None
  assert not any(name.startswith('.') for name in os.listdir(os.path.dirname(saved)))


@pytest.mark.parametrize('units, mesh_format, scale', [('cm', 'obj', 0.1), ('m', 'ply', 1e-3),
                                                       ('mm', 'ply', 1.0)])
def test_round_trip_units_and_formats(tiny_actor, tmp_path, units, mesh_format, scale):
  path = save_actor(tiny_actor, str(tmp_path / 'a'), units=units, mesh_format=mesh_format)
  with open(os.path.join(path, 'actor.json')) as f:
    settings = json.load(f)
  assert settings['units'] == units
  np.testing.assert_allclose(settings['pivot'], TINY_PIVOT * scale, rtol=1e-6)
  vertices, faces = read_mesh(os.path.join(path, f'neutral.{mesh_format}'))
  np.testing.assert_allclose(vertices, tiny_actor.neutral * scale, rtol=1e-6, atol=1e-9)
  np.testing.assert_array_equal(faces, tiny_actor.faces)
  loaded = load_actor(path)  # Back in mm.
  _assert_same_actor(loaded, tiny_actor, atol=1e-4)


def test_ground_truth_round_trip_follows_shape_order(tiny_actor, tmp_path):
  rng = np.random.default_rng(0)
  v = tiny_actor.num_vertices
  normal = rng.normal(size=(v, 3))
  truth = GroundTruth(
      bone_point=rng.normal(size=(v, 3)).astype(np.float32) * 30,
      bone_normal=(normal / np.linalg.norm(normal, axis=1, keepdims=True)).astype(np.float32),
      thickness=rng.uniform(5, 20, v).astype(np.float32),
      skinning=rng.uniform(0, 1, v).astype(np.float32),
      jaw_rotation=np.stack([np.eye(3), np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1])]),
      jaw_translation=np.array([[0, 0, 0], [1, 2, 3], [4, 5, 6]], np.float32),
      bone_id=(np.arange(v) % 2).astype(np.int32))
  actor = dataclasses.replace(tiny_actor, ground_truth=truth)
  path = save_actor(actor, str(tmp_path / 'gt'), units='cm')
  assert 'ground_truth.npz' in os.listdir(path)
  loaded = load_actor(path).ground_truth
  for field in dataclasses.fields(GroundTruth):
    np.testing.assert_allclose(getattr(loaded, field.name), getattr(truth, field.name),
                               rtol=1e-6, atol=1e-5, err_msg=field.name)
  assert loaded.bone_id.dtype == np.int32
  # Reordering the shapes in actor.json reorders the per-shape ground truth with them.
  _edit_json(path, shape_order=['rest', 'smile', 'jaw_open'])
  reordered = load_actor(path)
  assert reordered.shape_names == ('rest', 'smile', 'jaw_open')
  np.testing.assert_allclose(reordered.shapes[1], tiny_actor.shapes[2], atol=1e-4)
  np.testing.assert_allclose(reordered.ground_truth.jaw_translation,
                             truth.jaw_translation[[0, 2, 1]], atol=1e-5)
  np.testing.assert_array_equal(reordered.ground_truth.jaw_rotation, truth.jaw_rotation[[0, 2, 1]])


def test_defaults_without_actor_json(tiny_actor, saved):
  for name in ('actor.json', 'trusted.npy', 'region.npy'):
    os.remove(os.path.join(saved, name))
  loaded = load_actor(saved)
  assert loaded.name == 'tiny'  # The folder's name.
  assert loaded.shape_names == ('neutral', 'jaw_open', 'smile')  # Sorted file stems.
  assert loaded.trusted.all() and loaded.region.all()
  np.testing.assert_allclose(loaded.pivot, TINY_PIVOT, atol=1e-5)  # Estimated from the mandible.
  np.testing.assert_array_equal(loaded.shapes, tiny_actor.shapes)


def test_masks_as_vertex_id_lists_and_npy_ids(saved):
  _edit_json(saved, trusted=[0, 5, 7], region='ids.npy')
  np.save(os.path.join(saved, 'ids.npy'), np.array([1, 2, 3]))
  loaded = load_actor(saved)
  np.testing.assert_array_equal(np.flatnonzero(loaded.trusted), [0, 5, 7])
  np.testing.assert_array_equal(np.flatnonzero(loaded.region), [1, 2, 3])


def test_pivot_from_json_in_declared_units(saved):
  _edit_json(saved, pivot=[0.1, -0.2, -0.3], units='m')
  # Rescale the meshes to metres so the units stay plausible.
  for rel in ('neutral.obj', 'skull.obj', 'mandible.obj', 'expressions/jaw_open.obj',
              'expressions/smile.obj'):
    file = os.path.join(saved, rel)
    vertices, faces = read_mesh(file)
    mesh_io.write_mesh(file, vertices / 1000.0, faces)
  loaded = load_actor(saved)
  np.testing.assert_allclose(loaded.pivot, [100.0, -200.0, -300.0], rtol=1e-6)
  np.testing.assert_allclose(loaded.neutral, tiny_neutral(12), atol=1e-4)


def test_estimate_pivot():
  mandible = box_mesh([-30.0, -46.0, -50.0], [30.0, -12.0, -2.0])
  np.testing.assert_allclose(estimate_pivot(mandible.vertices), TINY_PIVOT)
  shifted = mandible.vertices + [7.0, 0.0, 0.0]
  np.testing.assert_allclose(estimate_pivot(shifted, np.array([1.0, 0, 0, 7.0])),
                             TINY_PIVOT + [7.0, 0, 0])
  with pytest.raises(ActorError, match='no vertex on the right of the mirror plane'):
    estimate_pivot(mandible.vertices + [100.0, 0.0, 0.0])


def test_load_actor_source_reads_folders(tiny_actor, saved, tmp_path):
  _assert_same_actor(load_actor_source(saved), tiny_actor)
  _expect('no such actor folder', lambda: load_actor_source(str(tmp_path / 'missing')))


# Quads and polygons.


def _write_polygon_obj(file, vertices, polygons):
  """An OBJ with texture and normal indices, a material switch and negative indices."""
  lines = ['mtllib nowhere.mtl', 'o head']
  lines += [f'v {x:.9g} {y:.9g} {z:.9g}' for x, y, z in vertices]
  lines += [f'vt {i / len(vertices):.6f} 0.5' for i in range(len(vertices))]
  lines += ['vn 0 0 1']
  for k, polygon in enumerate(polygons):
    if k == len(polygons) // 2:
      lines.append('usemtl other')
    if k == 0:  # Negative (relative) indices.
      lines.append('f ' + ' '.join(f'{i - len(vertices)}/{i + 1}' for i in polygon))
    else:
      lines.append('f ' + ' '.join(f'{i + 1}/{i + 1}/1' for i in polygon))
  with open(file, 'w') as f:
    f.write('\n'.join(lines) + '\n')


def _grid_quads(num):
  r, c = np.meshgrid(np.arange(num - 1), np.arange(num - 1), indexing='ij')
  a = (r * num + c).ravel()
  return np.stack([a, a + 1, a + num + 1, a + num], 1)


def _box_quads():
  # box_mesh corners: index 4 i + 2 j + k for corner (i, j, k); outward quads.
  return np.array([[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4],
                   [1, 5, 7, 3]])


def test_quads_are_triangulated_consistently(tiny_actor, tmp_path):
  path = tmp_path / 'quads'
  (path / 'expressions').mkdir(parents=True)
  quads = _grid_quads(12)
  for name, shape in zip(tiny_actor.shape_names, tiny_actor.shapes):
    file = path / ('neutral.obj' if name == 'neutral' else f'expressions/{name}.obj')
    _write_polygon_obj(file, shape, quads)
  _write_polygon_obj(path / 'skull.obj', tiny_actor.skull.vertices, _box_quads())
  _write_polygon_obj(path / 'mandible.obj', tiny_actor.mandible.vertices, _box_quads())
  loaded = load_actor(str(path))
  assert loaded.num_vertices == tiny_actor.num_vertices  # No vertex split at seams or dropped.
  np.testing.assert_array_equal(loaded.shapes, tiny_actor.shapes)
  assert loaded.faces.shape == (2 * len(quads), 3)
  # Every quad became two triangles over its own four corners, covering it.
  for quad, tri_a, tri_b in zip(quads, loaded.faces[0::2], loaded.faces[1::2]):
    assert set(tri_a) | set(tri_b) == set(quad) and len(set(tri_a) & set(tri_b)) == 2
  assert loaded.skull.faces.shape == (12, 3) and loaded.mandible.faces.shape == (12, 3)
  np.testing.assert_allclose(loaded.pivot, TINY_PIVOT, atol=1e-5)


def test_pentagon_and_ply_quads(tmp_path):
  vertices = np.array([[0, 0, 0], [1, 0, 0], [2, 1, 0], [1, 2, 0], [0, 1, 0], [5, 5, 5]], float)
  _write_polygon_obj(tmp_path / 'p.obj', vertices, [[0, 1, 2, 3, 4]])
  read_vertices, faces = read_mesh(str(tmp_path / 'p.obj'))
  assert read_vertices.shape == (6, 3)  # The unreferenced vertex 5 is kept.
  np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3], [0, 3, 4]])
  ply = ['ply', 'format ascii 1.0', 'element vertex 6', 'property float x', 'property float y',
         'property float z', 'element face 2', 'property list uchar int vertex_indices',
         'end_header'] + [' '.join(map(str, v)) for v in vertices] + ['4 0 1 2 3', '3 0 3 4']
  (tmp_path / 'q.ply').write_text('\n'.join(ply) + '\n')
  read_vertices, faces = read_mesh(str(tmp_path / 'q.ply'), scale=10.0)
  np.testing.assert_allclose(read_vertices, vertices * 10.0)
  triangles = [frozenset(f) for f in faces.tolist()]
  assert len(triangles) == 3 and frozenset([0, 3, 4]) in triangles
  quad = [t for t in triangles if t != frozenset([0, 3, 4])]
  assert quad[0] | quad[1] == {0, 1, 2, 3} and len(quad[0] & quad[1]) == 2


# Error paths: every message names the file.


def _remove(rel):
  def change(path):
    target = os.path.join(path, rel)
    if os.path.isdir(target):
      for name in os.listdir(target):
        os.remove(os.path.join(target, name))
      os.rmdir(target)
    else:
      os.remove(target)
  return change


def _write(rel, text):
  def change(path):
    with open(os.path.join(path, rel), 'w') as f:
      f.write(text)
  return change


def _write_bytes(rel, data):
  def change(path):
    os.remove(os.path.join(path, os.path.splitext(rel)[0] + '.obj'))
    with open(os.path.join(path, rel), 'wb') as f:
      f.write(data)
  return change


def _copy(source, target):
  def change(path):
    with open(os.path.join(path, source), 'rb') as f:
      data = f.read()
    with open(os.path.join(path, target), 'wb') as f:
      f.write(data)
  return change


def _drop_last_vertex(rel):
  def change(path):
    file = os.path.join(path, rel)
    vertices, faces = read_mesh(file)
    mesh_io.write_mesh(file, vertices[:-1], faces[(faces < len(vertices) - 1).all(axis=1)])
  return change


def _fewer_faces(rel):
  def change(path):
    file = os.path.join(path, rel)
    vertices, faces = read_mesh(file)
    mesh_io.write_mesh(file, vertices, faces[:-2])
  return change


def _nan_vertex(rel, index):
  def change(path):
    file = os.path.join(path, rel)
    vertices, faces = read_mesh(file)
    vertices[index, 1] = np.nan
    mesh_io.write_mesh(file, vertices, faces)
  return change


def _json(**changes):
  def change(path):
    _edit_json(path, **changes)
  return change


def _npy(rel, array):
  def change(path):
    np.save(os.path.join(path, rel), array)
  return change


def _both(*changes):
  def change(path):
    for c in changes:
      c(path)
  return change


def _neutral_in_cm(path):
  file = os.path.join(path, 'neutral.obj')
  vertices, faces = read_mesh(file)
  mesh_io.write_mesh(file, vertices / 10.0, faces)


def _bad_ground_truth(path):
  np.savez(os.path.join(path, 'ground_truth.npz'), thickness=np.zeros(144))


_ERRORS = [
    ('no_neutral', _remove('neutral.obj'), r'tiny: missing neutral\.obj or neutral\.ply'),
    ('two_neutrals', _write('neutral.ply', 'ply'),
     r'tiny: neutral\.obj and neutral\.ply both present; keep one'),
    ('no_skull', _remove('skull.obj'), r'tiny: missing skull\.obj or skull\.ply'),
    ('no_mandible', _remove('mandible.obj'), r'tiny: missing mandible\.obj or mandible\.ply'),
    ('no_expression_folder', _remove('expressions'),
     r'tiny/expressions: missing: need at least one expression'),
    ('empty_expressions', _both(_remove('expressions/smile.obj'),
                                _remove('expressions/jaw_open.obj'),
                                _write('expressions/smile.mtl', 'newmtl a')),
     r'tiny/expressions: no expression meshes \(\.obj or \.ply\)'),
    ('duplicate_expression', _write('expressions/smile.ply', 'ply'),
     r'expressions/smile\.(obj|ply): expression \'smile\' also in smile\.(obj|ply)'),
    ('bad_vertex', _write('expressions/smile.obj', 'v 1 2\nv 1 2 abc\n'),
     r'expressions/smile\.obj: line 1: bad vertex \'v 1 2\' \(fewer than 3 coordinates\)'),
    ('bad_number', _write('expressions/smile.obj', 'v 1 2 abc\n'),
     r'expressions/smile\.obj: line 1: bad vertex .*could not convert'),
    ('bad_face', _write('skull.obj', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n'),
     r'skull\.obj: line 4: bad face \'f 1 2\' \(fewer than 3 corners\)'),
    ('zero_index', _write('skull.obj', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n'),
     r'skull\.obj: line 4: bad face .*indices start at 1'),
    ('face_out_of_range', _write('mandible.obj', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n'),
     r'mandible\.obj: a face uses vertex 8 \(0-based\) but the file has 3 vertices'),
    ('empty_obj', _write('neutral.obj', ''), r'neutral\.obj: unreadable mesh: no vertex'),
    ('binary_obj', _write_bytes('neutral.obj', b'\x00\x01\x02garbage'),
     r'neutral\.obj: unreadable mesh: binary data'),
    ('corrupt_ply', _write_bytes('expressions/smile.ply', b'ply\nformat nonsense\n\x00\x01'),
     r'expressions/smile\.ply: unreadable mesh \('),
    ('truncated_ply', _write_bytes('neutral.ply', b'ply\nformat binary_little_endian 1.0\n'
                                   b'element vertex 9\nproperty float x\nproperty float y\n'
                                   b'property float z\nend_header\n\x00\x00'),
     r'neutral\.ply: unreadable mesh'),
    ('expression_named_neutral', _both(_copy('neutral.obj', 'expressions/neutral.obj'),
                                       _write('actor.json', '{}')),
     r'expressions/neutral\.obj: an expression named like the neutral \(\'neutral\'\)'),
    ('skull_without_faces', _write('skull.obj', 'v 0 0 0\nv 1 0 0\nv 0 1 0\n'),
     r'skull\.obj: no faces; a bone must be a triangle mesh'),
    ('vertex_count', _drop_last_vertex('expressions/smile.obj'),
     r'expressions/smile\.obj: 143 vertices, the neutral has 144$'),
    ('topology', _fewer_faces('expressions/jaw_open.obj'),
     r'expressions/jaw_open\.obj: 240 triangles, the neutral has 242'),
    ('nan_neutral', _nan_vertex('neutral.obj', 17),
     r'neutral\.obj: NaN/inf coordinates in 1 vertex\(es\), first vertex 17'),
    ('nan_expression', _nan_vertex('expressions/jaw_open.obj', 3),
     r'expressions/jaw_open\.obj: NaN/inf coordinates in 1 vertex\(es\), first vertex 3'),
    ('nan_mandible', _nan_vertex('mandible.obj', 2), r'mandible\.obj: NaN/inf .*first vertex 2'),
    ('inf_text', _write('skull.obj', 'v inf 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n'),
     r'skull\.obj: NaN/inf coordinates in 1 vertex\(es\), first vertex 0'),
    ('units_unknown', _json(units='inch'),
     r'actor\.json: unknown units \'inch\'; expected one of mm, cm, m'),
    ('unknown_keys', _json(scale=2, colour='red'),
     r"actor\.json: unknown key\(s\) 'colour', 'scale'; allowed keys: jaw_transforms, name, "
     r'pivot, region, shape_order, source_vertex_ids, trusted, units'),
    ('pivot_short', _json(pivot=[1, 2]),
     r'actor\.json: pivot must be 3 finite numbers \[x, y, z\] in mm, got \[1, 2\]'),
    ('pivot_text', _json(pivot=[1, 2, 'a']), r'actor\.json: pivot must be 3 finite numbers'),
    ('pivot_nan', _json(pivot=[1, 2, float('nan')]), r'actor\.json: pivot must be 3 finite'),
    ('pivot_bool', _json(pivot=[True, 2, 3]), r'actor\.json: pivot must be 3 finite'),
    ('bad_json', _write('actor.json', '{"units": "mm",'), r'actor\.json: not valid JSON \('),
    ('json_list', _write('actor.json', '[1, 2]'), r'actor\.json: must hold a JSON object'),
    ('bad_name', _json(name=''), r'actor\.json: name must be a non-empty string'),
    ('trusted_missing_file', _json(trusted='paint.npy'),
     r'actor\.json: trusted: no such file \'paint\.npy\''),
    ('trusted_ids_out_of_range', _json(trusted=[0, 144]),
     r'actor\.json \(trusted\): trusted lists vertex ids outside 0\.\.143'),
    ('region_not_ids', _json(region=[0.5]), r'actor\.json: region must be a \.npy file name or a '
     r'list of vertex ids'),
    ('region_wrong_type', _json(region=3), r'actor\.json: region must be a \.npy file name'),
    ('trusted_mask_length', _npy('trusted.npy', np.ones(143, bool)),
     r'trusted\.npy: trusted mask has shape \(143,\); the neutral has 144 vertices'),
    ('trusted_float', _npy('trusted.npy', np.ones(144)), r'trusted\.npy: trusted must be'),
    ('trusted_corrupt', _write('trusted.npy', 'not npy'), r'trusted\.npy: unreadable \.npy'),
    ('shape_order_unknown', _json(shape_order=['jaw_open', 'frown']),
     r'actor\.json: shape_order must list every expression once \(names without a file in '
     r'expressions/: frown; expressions missing from it: smile\)'),
    ('shape_order_repeat', _json(shape_order=['smile', 'smile']),
     r'actor\.json: shape_order repeats a name'),
    ('shape_order_not_list', _json(shape_order='smile'),
     r'actor\.json: shape_order must be a non-empty list'),
    ('shape_order_neutral_twice', _json(shape_order=['smile', 'smile', 'jaw_open']),
     r'actor\.json: shape_order names the neutral \'smile\' twice'),
    ('expression_file_deleted', _remove('expressions/smile.obj'),
     r'actor\.json: shape_order must list every expression once \(names without a file in '
     r'expressions/: smile\)$'),
    ('ground_truth_missing_arrays', _bad_ground_truth,
     r'ground_truth\.npz: missing arrays: bone_point, bone_normal'),
    ('ground_truth_corrupt', _write('ground_truth.npz', 'zip?'), r'ground_truth\.npz: unreadable'),
    ('units_wrong', _both(_json(units='mm'), _neutral_in_cm),
     r'tiny: neutral spans 10 units; expected a face of 20-1000 mm: are the units right'),
]


@pytest.mark.parametrize('change, match', [c[1:] for c in _ERRORS], ids=[c[0] for c in _ERRORS])
def test_load_errors_name_the_file(saved, change, match):
  change(saved)
  message = _expect(match, lambda: load_actor(saved))
  assert message.startswith(saved)  # The full path of the folder or of the file.


def test_missing_folder_and_file_instead_of_folder(tmp_path):
  missing = str(tmp_path / 'nowhere')
  _expect(r'nowhere: no such actor folder$', lambda: load_actor(missing))
  (tmp_path / 'file.obj').write_text('v 0 0 0\n')
  _expect(r'file\.obj: not a folder', lambda: load_actor(str(tmp_path / 'file.obj')))


def test_unreadable_files_chain_the_cause(saved):
  with open(os.path.join(saved, 'expressions', 'smile.obj'), 'w') as f:
    f.write('v 1 2 abc\n')
  with pytest.raises(ActorError) as info:
    load_actor(saved)
  assert isinstance(info.value.__cause__, ValueError)


# Saving.


def test_save_rejects_bad_arguments(tiny_actor, tmp_path):
  path = str(tmp_path / 'x')
  _expect(r'x: unknown units \'ft\'', lambda: save_actor(tiny_actor, path, units='ft'))
  _expect(r'x: unknown mesh format \'stl\'', lambda: save_actor(tiny_actor, path,
                                                                mesh_format='stl'))
  for bad in ('a/b', '.hidden', '', ' padded'):
    renamed = dataclasses.replace(tiny_actor, shape_names=('neutral', bad, 'smile'))
    _expect(r'x: shape name .* cannot be a file name',
            lambda renamed=renamed: save_actor(renamed, path))
  twice = dataclasses.replace(tiny_actor, shape_names=('neutral', 'smile', 'smile'))
  _expect(r'x: shape names repeat: smile', lambda: save_actor(twice, path))
  cased = dataclasses.replace(tiny_actor, shape_names=('neutral', 'Smile', 'smile'))
  _expect(r'x: shape names \'Smile\' and \'smile\' would share a file',
          lambda: save_actor(cased, path))
  (tmp_path / 'f').write_text('')
  _expect(r'f: exists and is not a folder', lambda: save_actor(tiny_actor, str(tmp_path / 'f')))
  assert sorted(os.listdir(tmp_path)) == ['f']  # Nothing half-written left behind.


def test_save_creates_a_normally_readable_folder(saved):
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(saved).st_mode & 0o777 == 0o777 & ~umask


def test_save_over_existing_replaces_actor_files_only(tiny_actor, saved):
  with open(os.path.join(saved, 'notes.txt'), 'w') as f:
    f.write('keep me')
  other = make_tiny_actor(num=8, name='other')
  other = dataclasses.replace(other, shape_names=('rest', 'open', 'grin'),
                              trusted=np.ones(64, bool), region=np.ones(64, bool))
  save_actor(other, saved, mesh_format='ply')
  assert sorted(os.listdir(saved)) == ['actor.json', 'expressions', 'mandible.ply',
                                       'neutral.ply', 'notes.txt', 'skull.ply']
  assert sorted(os.listdir(os.path.join(saved, 'expressions'))) == ['grin.ply', 'open.ply']
  _assert_same_actor(load_actor(saved), other, atol=1e-5)
  assert not any(name.startswith('.') for name in os.listdir(os.path.dirname(saved)))


def test_failed_write_leaves_existing_folder_intact(tiny_actor, saved, monkeypatch):
  before = file_hashes(saved)
  calls = []
  original = mesh_io._write_obj

  def flaky(file, vertices, faces):
    calls.append(file)
    if len(calls) == 3:
      raise OSError(28, 'No space left on device')
    original(file, vertices, faces)

  monkeypatch.setattr(mesh_io, '_write_obj', flaky)
  other = make_tiny_actor(num=8, name='other')
  _expect(r'tiny: saving failed, the folder was left as it was \(OSError: .*No space left',
          lambda: save_actor(other, saved))
  assert file_hashes(saved) == before
  assert sorted(os.listdir(os.path.dirname(saved))) == ['tiny']  # No staging folder left.
  monkeypatch.undo()
  _assert_same_actor(load_actor(saved), tiny_actor)


def test_failed_move_puts_old_files_back(tiny_actor, saved, monkeypatch):
  before = file_hashes(saved)
  original = os.rename
  moves = []

  def flaky(source, target):
    if '.saving-' in str(source):  # Moving a new file into place: fail on the third.
      moves.append(target)
      if len(moves) == 3:
        raise OSError(5, 'Input/output error')
    original(source, target)

  monkeypatch.setattr(folder.os, 'rename', flaky)
  _expect(r'tiny: saving failed, the folder was left as it was',
          lambda: save_actor(make_tiny_actor(num=8, name='other'), saved))
  monkeypatch.undo()
  assert file_hashes(saved) == before
  assert sorted(os.listdir(os.path.dirname(saved))) == ['tiny']


# Per-shape jaw transforms (the learning's optional jaw prior).


def _with_jaws(actor):
  angle = np.deg2rad(20.0)
  open_jaw = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                       [0, np.sin(angle), np.cos(angle)]])
  rotation = np.stack([np.eye(3), open_jaw, np.eye(3)])
  translation = np.array([[0, 0, 0], [0.5, -1.0, 2.0], [3.0, 0, 0]])
  return dataclasses.replace(actor, shape_jaws=(rotation.astype(np.float32),
                                                translation.astype(np.float32)))


@pytest.mark.parametrize('units', ['mm', 'cm'])
def test_jaw_transforms_round_trip(tiny_actor, tmp_path, units):
  actor = _with_jaws(tiny_actor)
  path = save_actor(actor, str(tmp_path / 'a'), units=units)
  with open(os.path.join(path, 'actor.json')) as f:
    assert json.load(f)['jaw_transforms'] == 'jaw_transforms.json'
  loaded = load_actor(path)
  for got, want in zip(loaded.shape_jaws, actor.shape_jaws):
    np.testing.assert_allclose(got, want, atol=1e-5)
  assert load_actor(save_actor(tiny_actor, str(tmp_path / 'b'))).shape_jaws is None


def test_jaw_transforms_about_another_pivot_are_moved_to_the_actors(saved, tiny_actor):
  actor = _with_jaws(tiny_actor)
  rotation, translation = actor.shape_jaws
  other = np.array([10.0, -20.0, 5.0])
  # The same motions written about `other`: t_other = t + (R - I)(other - pivot).
  shapes = {name: {'R': r.tolist(), 't': (t + (r - np.eye(3)) @ (other - actor.pivot)).tolist()}
            for name, r, t in zip(actor.shape_names[1:], rotation[1:], translation[1:])}
  with open(os.path.join(saved, 'jaws.json'), 'w') as f:
    json.dump({'pivot': other.tolist(), 'shapes': shapes}, f)
  _edit_json(saved, jaw_transforms='jaws.json')
  loaded = load_actor(saved)
  np.testing.assert_allclose(loaded.shape_jaws[0], rotation, atol=1e-6)
  np.testing.assert_allclose(loaded.shape_jaws[1], translation, atol=1e-4)


@pytest.mark.parametrize('content, match', [
    (None, r'jaws\.json: missing \(named by actor\.json\'s jaw_transforms\)'),
    ('{"shapes": ', r'jaws\.json: unreadable'),
    ({'shapes': {'jaw_open': {'R': np.eye(3).tolist(), 't': [0, 0, 0]}}},
     r"jaws\.json: no jaw transform for shape 'smile'"),
    ({'shapes': {'jaw_open': {'R': (2 * np.eye(3)).tolist(), 't': [0, 0, 0]},
                 'smile': {'R': np.eye(3).tolist(), 't': [0, 0, 0]}}},
     r"jaws\.json: shape 'jaw_open': R is not a finite rotation matrix"),
    ({'shapes': {'jaw_open': {'R': np.eye(3).tolist(), 't': [0, 0]},
                 'smile': {'R': np.eye(3).tolist(), 't': [0, 0, 0]}}},
     r"jaws\.json: shape 'jaw_open': R must be 3x3 and t 3 numbers"),
])
def test_jaw_transform_errors_name_the_file(saved, content, match):
  if content is not None:
    with open(os.path.join(saved, 'jaws.json'), 'w') as f:
      f.write(content if isinstance(content, str) else json.dumps(content))
  _edit_json(saved, jaw_transforms='jaws.json')
  message = _expect(match, lambda: load_actor(saved))
  assert message.startswith(saved)


def test_source_vertex_ids_round_trip_and_bad_files(saved, tiny_actor):
  ids = np.arange(tiny_actor.num_vertices) * 2 + 5
  with_ids = dataclasses.replace(tiny_actor, source_vertex_ids=ids)
  folder = save_actor(with_ids, saved)
  np.testing.assert_array_equal(load_actor(folder).source_vertex_ids, ids)
  np.save(os.path.join(folder, 'source_vertex_ids.npy'), np.zeros(tiny_actor.num_vertices, int))
  _expect(r'tiny: source_vertex_ids must be \d+ distinct non-negative integers',
          lambda: load_actor(folder))
  _edit_json(folder, source_vertex_ids='missing.npy')
  _expect(r"actor\.json: source_vertex_ids: no such file 'missing\.npy'",
          lambda: load_actor(folder))
