"""Actor validation (every error of validate_actor / make_actor) and the symmetry map."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from tiny import TINY_PIVOT, make_tiny_actor

from aim_jax import rigid_np
from aim_jax.data.actor import ActorError, GroundTruth, Mesh, make_actor

V = 144  # Vertices of the default tiny actor (12 x 12).


def _kwargs(actor):
  """make_actor's arguments that rebuild `actor` (copies, safe to edit)."""
  return dict(name=actor.name, shapes=actor.shapes.copy(), shape_names=list(actor.shape_names),
              faces=actor.faces.copy(), skull=Mesh(actor.skull.vertices.copy(), actor.skull.faces),
              mandible=Mesh(actor.mandible.vertices.copy(), actor.mandible.faces.copy()),
              pivot=actor.pivot.copy(), trusted=actor.trusted.copy(), region=actor.region.copy(),
              source='tiny')


def _expect(match, build):
  """Asserts build() raises a one-line ActorError '<source>: ...' matching `match`."""
  with pytest.raises(ActorError, match=match) as info:
    build()
  message = str(info.value)
  assert '\n' not in message
  assert message.startswith('tiny: ')
  return message


def _set(key, value):
  def change(kwargs):
    kwargs[key] = value
  return change


def _set_item(key, index, value):
  def change(kwargs):
    kwargs[key][index] = value
  return change


def _bad_faces(rows):
  def change(kwargs):
    kwargs['faces'][:len(rows)] = rows
  return change


def _collinear_face(kwargs):
  # Vertices 0, 1, 2 of the bottom row moved onto one line (exactly, in float32).
  kwargs['shapes'][:, :3] = [[-40.0, -50.0, 10.0], [-32.0, -50.0, 10.0], [-24.0, -50.0, 10.0]]
  kwargs['faces'][4] = [0, 1, 2]


def _scale(factor):
  def change(kwargs):
    kwargs['shapes'] = kwargs['shapes'] * factor
  return change


def _one_shape(kwargs):
  kwargs['shapes'] = kwargs['shapes'][:1]
  kwargs['shape_names'] = kwargs['shape_names'][:1]


def _bone(which, vertices=None, faces=None):
  def change(kwargs):
    bone = kwargs[which]
    kwargs[which] = Mesh(bone.vertices if vertices is None else vertices,
                         bone.faces if faces is None else faces)
  return change


def _nan_bone(kwargs):
  kwargs['skull'].vertices[3, 1] = np.nan


_CASES = [
    ('shapes_2d', _set('shapes', np.zeros((3, V, 2))), r'shapes must be \(S, V, 3\), got shape '
     r'\(3, 144, 2\)'),
    ('shapes_flat', _set('shapes', np.zeros((V, 3))), r'shapes must be \(S, V, 3\)'),
    ('name_count', _set('shape_names', ['neutral', 'smile']), r'2 shape names for 3 shapes'),
    ('single_shape', _one_shape, r'need a neutral and at least one expression, got 1 shape'),
    ('nan_expression', _set_item('shapes', (1, 5, 2), np.nan),
     r'shape 1 \(jaw_open\) has 1 non-finite values \(NaN/inf\), first at index \(5, 2\)'),
    ('inf_expression', _set_item('shapes', (2, 7, 0), -np.inf),
     r'shape 2 \(smile\) has 1 non-finite values .*index \(7, 0\)'),
    ('nan_neutral', _set_item('shapes', (0, 11, 1), np.nan),
     r'shape 0 \(neutral\) has 1 non-finite .*index \(11, 1\)'),
    ('degenerate_repeated', _bad_faces([[5, 5, 6]]), r'skin has 1 degenerate \(zero-area\) faces, '
     r'first is face 0'),
    ('degenerate_collinear', _collinear_face, r'skin has 1 degenerate .*first is face 4'),
    ('degenerate_two', _bad_faces([[0, 0, 0], [7, 8, 8]]), r'skin has 2 degenerate .*face 0'),
    ('face_out_of_range', _bad_faces([[0, 1, V]]), r'skin faces index vertex 144 .*144 vertices'),
    ('face_negative', _bad_faces([[-1, 1, 2]]), r'skin faces index vertex .*-1.*144 vertices'),
    ('faces_not_triangles', _set('faces', np.zeros((4, 4), np.int32)),
     r'skin faces must be \(F, 3\) triangles, got shape \(4, 4\)'),
    ('no_faces', _set('faces', np.zeros((0, 3), np.int32)), r'skin has no faces'),
    ('units_too_small', _scale(0.15 / 100.0),
     r'neutral spans 0\.15 units; expected a face of 20-1000 mm: are the units right'),
    ('units_metres_as_mm', _scale(1000.0), r'neutral spans 1e\+05 units.*units'),
    ('skull_2d', _bone('skull', vertices=np.zeros((8, 2), np.float32)),
     r'skull vertices must be \(N, 3\), got shape \(8, 2\)'),
    ('skull_nan', _nan_bone, r'skull vertices has 1 non-finite .*index \(3, 1\)'),
    ('mandible_face_range', _bone('mandible', faces=np.array([[0, 1, 8]])),
     r'mandible faces index vertex 8 .*8 vertices'),
    ('mandible_degenerate', _bone('mandible', faces=np.array([[0, 1, 1]])),
     r'mandible has 1 degenerate'),
    ('pivot_shape', _set('pivot', np.zeros(2)), r'pivot must be \(3,\), got shape \(2,\)'),
    ('pivot_nan', _set('pivot', np.array([0.0, np.nan, 0.0])), r'pivot has 1 non-finite'),
    ('trusted_short', _set('trusted', np.ones(V - 1, bool)),
     r'trusted must have one entry per vertex \(144\), got shape \(143,\)'),
    ('region_2d', _set('region', np.ones((V, 2), bool)),
     r'region must have one entry per vertex \(144\), got shape \(144, 2\)'),
    ('region_empty', _set('region', np.zeros(V, bool)), r'region mask selects no vertex'),
]


@pytest.mark.parametrize('change, match', [c[1:] for c in _CASES], ids=[c[0] for c in _CASES])
def test_make_actor_errors(tiny_actor, change, match):
  kwargs = _kwargs(tiny_actor)
  change(kwargs)
  _expect(match, lambda: make_actor(**kwargs))


def test_actor_constructor_validates_symmetry_and_plane(tiny_actor):
  # dataclasses.replace re-runs __post_init__, hence validate_actor.
  bad = tiny_actor.symmetry.copy()
  bad[0] = V
  _expect(r'symmetry indexes a vertex out of range',
          lambda: dataclasses.replace(tiny_actor, symmetry=bad))
  bad[0] = -2
  _expect(r'symmetry indexes a vertex out of range',
          lambda: dataclasses.replace(tiny_actor, symmetry=bad))
  _expect(r'symmetry must have one entry per vertex \(144\), got shape \(3,\)',
          lambda: dataclasses.replace(tiny_actor, symmetry=np.zeros(3, np.int32)))
  _expect(r'mirror_plane must be \(4,\), got shape \(3,\)',
          lambda: dataclasses.replace(tiny_actor, mirror_plane=np.zeros(3)))


def _ground_truth(num_vertices, num_shapes, rows=None):
  rows = num_vertices if rows is None else rows
  return GroundTruth(
      bone_point=np.zeros((rows, 3), np.float32), bone_normal=np.tile([0, 0, 1.0], (rows, 1)),
      thickness=np.full(rows, 10.0, np.float32), skinning=np.zeros(rows, np.float32),
      jaw_rotation=np.tile(np.eye(3), (num_shapes, 1, 1)),
      jaw_translation=np.zeros((num_shapes, 3)), bone_id=np.zeros(rows, np.int32))


def test_ground_truth_rows_checked(tiny_actor):
  ok = _ground_truth(V, 3)
  assert dataclasses.replace(tiny_actor, ground_truth=ok).ground_truth is ok
  _expect(r'ground truth bone_point has 143 rows for 144 vertices',
          lambda: dataclasses.replace(tiny_actor, ground_truth=_ground_truth(V, 3, rows=V - 1)))
  _expect(r'ground truth jaw_rotation has 2 rows for 3 shapes',
          lambda: dataclasses.replace(tiny_actor, ground_truth=_ground_truth(V, 2)))
  nan = dataclasses.replace(ok, thickness=np.full(V, np.nan, np.float32))
  _expect(r'ground truth thickness has 144 non-finite',
          lambda: dataclasses.replace(tiny_actor, ground_truth=nan))


def test_error_without_source_names_actor(tiny_actor):
  kwargs = _kwargs(tiny_actor)
  kwargs['source'] = ''
  kwargs['name'] = 'bob'
  kwargs['shapes'] = kwargs['shapes'][:1]
  kwargs['shape_names'] = kwargs['shape_names'][:1]
  with pytest.raises(ActorError, match=r'^bob: need a neutral'):
    make_actor(**kwargs)


def test_tiny_actor_is_valid_and_deterministic(tiny_actor):
  assert tiny_actor.num_vertices == V and tiny_actor.num_shapes == 3
  assert tiny_actor.shape_names == ('neutral', 'jaw_open', 'smile')
  assert tiny_actor.shapes.dtype == np.float32 and tiny_actor.faces.dtype == np.int32
  assert tiny_actor.faces.shape == (2 * 11 * 11, 3)
  np.testing.assert_array_equal(tiny_actor.neutral, tiny_actor.shapes[0])
  extent = np.ptp(tiny_actor.neutral, axis=0)
  assert 40 <= extent.max() <= 120
  np.testing.assert_array_equal(tiny_actor.pivot, TINY_PIVOT)
  assert 0 < tiny_actor.trusted.sum() < V and 0 < tiny_actor.region.sum() < V
  again = make_tiny_actor()
  np.testing.assert_array_equal(again.shapes, tiny_actor.shapes)
  np.testing.assert_array_equal(again.faces, tiny_actor.faces)
  assert make_tiny_actor(num=5).num_vertices == 25


def test_one_line_messages_for_every_case(tiny_actor):
  for _, change, _ in _CASES:
    kwargs = _kwargs(tiny_actor)
    change(kwargs)
    with pytest.raises(ActorError) as info:
      make_actor(**kwargs)
    assert len(str(info.value).splitlines()) == 1


# Symmetry.


@pytest.mark.parametrize('num', [12, 7])
def test_symmetric_grid_pairs_every_vertex(num):
  actor = make_tiny_actor(num=num)
  np.testing.assert_allclose(actor.mirror_plane, [1, 0, 0, 0], atol=1e-6)
  partner = actor.symmetry
  assert (partner >= 0).all()
  np.testing.assert_array_equal(partner[partner], np.arange(num * num))  # An involution.
  neutral = actor.neutral
  np.testing.assert_allclose(neutral[partner] * [-1, 1, 1], neutral, atol=1e-5)
  on_plane = np.abs(neutral[:, 0]) < 1e-6
  assert on_plane.sum() == (num if num % 2 else 0)
  np.testing.assert_array_equal(partner[on_plane], np.flatnonzero(on_plane))
  np.testing.assert_allclose(rigid_np.reflect(neutral, actor.mirror_plane)[partner], neutral,
                             atol=1e-5)


@pytest.mark.parametrize('axes, degrees', [('y', [30]), ('z', [15]), ('x', [40]),
                                           ('yxz', [10, 10, 10])])
def test_mirrored_rotated_copy_finds_the_plane(tiny_actor, axes, degrees):
  rotation = Rotation.from_euler(axes, degrees, degrees=True).as_matrix()
  translation = np.array([5.0, -3.0, 7.0])
  # Mirroring the symmetric grid only permutes it; the rotation then turns the plane x = 0.
  shapes = (tiny_actor.shapes * [-1, 1, 1]) @ rotation.T + translation
  kwargs = _kwargs(tiny_actor)
  kwargs.update(shapes=shapes, pivot=rotation @ tiny_actor.pivot + translation)
  kwargs['skull'] = Mesh(tiny_actor.skull.vertices @ rotation.T + translation,
                         tiny_actor.skull.faces)
  kwargs['mandible'] = Mesh(tiny_actor.mandible.vertices @ rotation.T + translation,
                            tiny_actor.mandible.faces)
  moved = make_actor(**kwargs)
  normal = rotation[:, 0]
  np.testing.assert_allclose(moved.mirror_plane, np.append(normal, normal @ translation),
                             atol=1e-4)
  np.testing.assert_array_equal(moved.symmetry, tiny_actor.symmetry)


def test_asymmetric_vertices_get_minus_one(tiny_actor):
  vertex = 3 * 12 + 2  # Row 3, column 2: left of the plane, interior.
  partner = tiny_actor.symmetry[vertex]
  assert partner == 3 * 12 + 9
  kwargs = _kwargs(tiny_actor)
  kwargs['shapes'][:, vertex, 2] += 5.0  # 5 mm out of symmetry; the grid spacing is >= 7 mm.
  lopsided = make_actor(**kwargs)
  assert lopsided.symmetry[vertex] == -1 and lopsided.symmetry[partner] == -1
  others = np.setdiff1d(np.arange(V), [vertex, partner])
  np.testing.assert_array_equal(lopsided.symmetry[others], tiny_actor.symmetry[others])
  np.testing.assert_allclose(lopsided.mirror_plane, [1, 0, 0, 0], atol=0.05)
  # A looser tolerance pairs them again.
  loose = make_actor(**kwargs, symmetry_tolerance_mm=6.0)
  assert loose.symmetry[vertex] == partner and loose.symmetry[partner] == vertex
