"""Tests of ICT-FaceKit actors (aim_jax/data/ict.py, anatomy/ict_bones.py, prepare.py).

Tests marked `needs_data` use ../shared/data (or $AIM_SHARED_DATA) and skip when it is absent.
"""

import json
import os

import numpy as np
import pytest

from aim_jax import prepare
from aim_jax.anatomy import skull_template
from aim_jax.data import folder as folder_lib
from aim_jax.data import ict
from aim_jax.data.actor import ActorError, check_triangles
from aim_jax.fitting import io as fit_io
from aim_jax.geometry import rotation_angle_deg
from configs import ict_actor as ict_config

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get('AIM_SHARED_DATA') or os.path.join(_REPO, '..', 'shared', 'data')
ICT_NPZ = os.path.join(DATA, 'ict_facekit', 'ict_facekit_light.npz')
SKULL = os.path.join(DATA, 'skull_artisynth', 'vkhUpperAirway')
needs_data = pytest.mark.skipif(not (os.path.isfile(ICT_NPZ) and os.path.isdir(SKULL)),
                                reason=f'ICT-FaceKit / ArtiSynth data not found under {DATA}')


def _one_line(err):
  return '\n' not in str(err.value)


# ---------------------------------------------------------------------------------------------
# Without data.


def test_region_triangles_reindexes_and_drops_straddling():
  triangles = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6]])
  local = ict.region_triangles(triangles, np.array([2, 3, 4, 5, 6]))
  np.testing.assert_array_equal(local, [[0, 1, 2], [2, 3, 4]])


def test_jaw_transform_recovers_a_rotation_about_the_pivot():
  rng = np.random.default_rng(0)
  teeth = rng.standard_normal((50, 3)) * 10.0 + [0.0, -40.0, 80.0]
  pivot = np.array([0.0, 20.0, 30.0])
  angle = np.radians(20.0)
  rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                       [0, np.sin(angle), np.cos(angle)]])
  translation = np.array([0.5, -1.0, 2.0])
  moved = (teeth - pivot) @ rotation.T + pivot + translation
  r, t = ict.jaw_transform(teeth, moved[None], pivot)
  np.testing.assert_allclose(r[0], rotation, atol=1e-9)
  np.testing.assert_allclose(t[0], translation, atol=1e-9)


def _write_obj(path, vertices, faces):
  with open(path, 'w') as f:
    for v in vertices:
      f.write('v %g %g %g\n' % tuple(v))
    for face in faces:
      f.write('f ' + ' '.join(str(i + 1) for i in face) + '\n')


def test_obj_folder_is_read_in_mm(tmp_path):
  neutral = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.5]], float)  # cm, one quad.
  _write_obj(tmp_path / 'generic_neutral_mesh.obj', neutral, [[0, 1, 2, 3]])
  _write_obj(tmp_path / 'identity000.obj', neutral + [0, 0, 1], [[0, 1, 2, 3]])
  _write_obj(tmp_path / 'smile.obj', neutral * 1.5, [[0, 1, 2, 3]])
  (tmp_path / 'vertex_indices.json').write_text(
      json.dumps({'expressions': ['smile'], 'idx_to_landmark_verts': [0, 1]}))
  model = ict.load_ict_model(str(tmp_path))
  np.testing.assert_allclose(model.neutral, neutral * 10.0)
  np.testing.assert_allclose(model.identity_deltas[0], np.tile([0, 0, 10.0], (4, 1)))
  np.testing.assert_allclose(model.expression_deltas[0], neutral * 5.0, atol=1e-5)
  np.testing.assert_array_equal(model.triangles, [[0, 1, 2], [0, 2, 3]])
  assert model.expression_names == ('smile',)
  # A missing expression OBJ is named in a one-line error.
  os.remove(tmp_path / 'smile.obj')
  with pytest.raises(ActorError, match='smile.obj') as err:
    ict.load_ict_model(str(tmp_path))
  assert _one_line(err)


def test_missing_inputs_give_one_line_errors(tmp_path):
  with pytest.raises(ActorError, match='nothere.npz') as err:
    ict.load_ict_model(str(tmp_path / 'nothere.npz'))
  assert _one_line(err)
  (tmp_path / 'vertex_indices.json').write_text(json.dumps({'expressions': [],
                                                            'idx_to_landmark_verts': []}))
  with pytest.raises(ActorError, match='generic_neutral_mesh.obj') as err:
    ict.load_ict_model(str(tmp_path))
  assert _one_line(err)
  with pytest.raises(ActorError, match='Skull.obj') as err:
    skull_template.load_template(str(tmp_path))
  assert _one_line(err)
  bad = tmp_path / 'bad.npz'
  bad.write_bytes(b'not an npz')
  with pytest.raises(ActorError, match='bad.npz') as err:
    ict.load_ict_model(str(bad))
  assert _one_line(err)


def test_prepare_synthetic_actor_folder(tmp_path):
  config = ict_config.get_config()
  config.render = False
  out = str(tmp_path / 'synthetic')
  report = prepare.prepare_actor('synthetic', out, config, log=None)
  actor = folder_lib.load_actor(out)
  assert actor.num_shapes == 20
  assert os.path.isfile(os.path.join(out, 'constraints.npz'))
  assert os.path.isfile(os.path.join(out, 'bone_report.json'))
  assert report['skin']['outside_fraction'] < 0.01


def test_config_lists_19_learning_expressions():
  names = ict_config.get_config().ict.expressions
  assert len(names) == 19 and len(set(names)) == 19
  assert {'jawOpen', 'jawLeft', 'jawRight', 'jawForward'} <= set(names)


# ---------------------------------------------------------------------------------------------
# With the ICT-FaceKit and ArtiSynth data.


@pytest.fixture(scope='module')
def model():
  return ict.load_ict_model(ICT_NPZ)


@pytest.fixture(scope='module')
def ict_actor(model):
  config = ict_config.get_config()
  config.ict.identity_seed = 3
  config.ict.performance_frames = 100
  return prepare.make_ict_actor(config, model=model,
                                template=skull_template.load_template(SKULL))


@needs_data
def test_units_are_mm_and_region_triangles_valid(model):
  with np.load(ICT_NPZ) as data:
    np.testing.assert_allclose(model.neutral, data['neutral'] * 10.0, rtol=1e-6)
  ids = ict.region_ids('narrow_face')
  faces = ict.region_triangles(model.triangles, ids)
  width = np.ptp(model.neutral[ids], axis=0)
  assert 120.0 < width[0] < 220.0 and 120.0 < width[1] < 220.0  # A face, in mm.
  assert faces.max() < ids.size and faces.min() >= 0
  assert np.isin(np.arange(ids.size), faces).all()  # Every region vertex is used.
  check_triangles('ict', 'skin', model.neutral[ids], faces)


@needs_data
def test_jaw_open_ground_truth(model):
  teeth = ict.region_ids('teeth_lower')
  weights = ict.expression_weights(model, {'jawOpen': 1.0})
  generic = model.neutral.astype(np.float64)
  r, _ = ict.jaw_transform(generic[teeth], ict.blend(model, generic, weights, teeth),
                           np.zeros(3))
  assert rotation_angle_deg(np.eye(3), r) == pytest.approx(25.33, abs=0.05)
  # An identity changes the teeth the additive delta is applied to: nearly the same angle.
  head = ict.identity_neutral(model, ict.identity_coefficients(model, 0))
  r, _ = ict.jaw_transform(head[teeth], ict.blend(model, head, weights, teeth), np.zeros(3))
  assert rotation_angle_deg(np.eye(3), r) == pytest.approx(25.33, abs=3.0)


@needs_data
def test_unknown_expression_is_named(model):
  names = list(ict_config.get_config().ict.expressions)
  names[3] = 'jawSideways'
  with pytest.raises(ActorError, match='jawSideways') as err:
    prepare.check_expressions(model, names)
  assert _one_line(err)


@needs_data
def test_ict_actor_shapes_and_bone_fit(ict_actor):
  actor = ict_actor.actor
  expected = ['neutral'] + list(ict_config.get_config().ict.expressions)
  assert list(actor.shape_names) == expected
  assert actor.ground_truth is None
  assert 120.0 < np.ptp(actor.neutral[:, 1]) < 250.0  # mm.
  jaw_open = expected.index('jawOpen')
  # 25.33 degrees on the generic neutral; the identity's teeth change it by a few degrees.
  assert rotation_angle_deg(np.eye(3), ict_actor.jaw_rotation[jaw_open]) == pytest.approx(
      25.33, abs=3.0)
  assert rotation_angle_deg(np.eye(3), ict_actor.jaw_rotation[expected.index('mouthPucker')]
                            ) < 0.1
  fit = ict_actor.report['after_warp']
  checked = ict_actor.report['after_warp_checked']
  # Bone pokes out nowhere but (possibly) at a handful of vertices of the checked skin (all but
  # the lips' contact line and oral mucosa, where the teeth sit in the mouth).
  assert checked['outside_fraction'] < 0.002
  assert checked['bone_vertices_outside'] == 0
  assert fit['landmark_mean_abs_error_mm'] < 3.0
  measured = [v['depth_mm'] for v in fit['landmarks'].values() if v['depth_mm'] is not None]
  assert len(measured) == len(fit['landmarks'])  # Closest-point depths find bone everywhere.
  assert ict_actor.report['seconds']['total'] < 60.0
  # The actor remembers where its vertices sit in the full ICT head, and frames of the full head
  # are cropped to it when fitted.
  np.testing.assert_array_equal(actor.source_vertex_ids, ict.region_ids(
      ict_config.get_config().ict.region))
  full = np.zeros((2, int(actor.source_vertex_ids.max()) + 10, 3), np.float32)
  full[:, actor.source_vertex_ids] = actor.shapes[:2]
  cropped = fit_io.to_actor_topology(full, actor.num_vertices, actor.source_vertex_ids, 'full')
  np.testing.assert_array_equal(cropped, actor.shapes[:2])


@needs_data
def test_performance_is_long_smooth_and_held_out(ict_actor):
  performance = ict_actor.performance
  assert performance.num_frames >= 100
  assert performance.frames.shape[1:] == ict_actor.actor.neutral.shape
  assert len(performance.control_names) == 53
  step = np.linalg.norm(np.diff(performance.frames, axis=0), axis=-1).max()
  span = np.linalg.norm(performance.frames - performance.frames.mean(0), axis=-1).max()
  assert step < 0.25 * span and step < 6.0  # mm per frame (a blink moves the lid ~12 mm).
  learning = set(ict_config.get_config().ict.expressions)
  held_out = [i for i, n in enumerate(performance.control_names) if n not in learning]
  assert performance.weights[:, held_out].max() > 0.4  # Speech-like weights, up to 0.5.
  assert (performance.weights.max(0) > 0).sum() >= 45  # Nearly every expression is used.
  others = np.delete(performance.weights, performance.control_names.index('jawOpen'), axis=1)
  assert (others > 0.05).sum(axis=1).mean() < 15  # Sparse: a few of 53 at a time.
  angle = rotation_angle_deg(np.eye(3)[None], performance.jaw_rotation)
  # The separate jaw track: up to jawOpen 0.75 (~19 deg), open most of the time.
  assert 12.0 < angle.max() < 22.0 and angle.mean() > 5.0
  assert np.abs(np.diff(angle)).max() < 4.0  # deg per frame: fast speech, not a jump.


@pytest.mark.parametrize('content,message', [
    ({'model.json': '{}'}, 'is a model or run workdir'),
    ({'notes.txt': 'mine'}, 'is a folder with other files'),
])
def test_prepare_refuses_a_folder_that_is_not_an_actor_folder(tmp_path, content, message):
  out = tmp_path / 'out'
  out.mkdir()
  for name, text in content.items():
    (out / name).write_text(text)
  with pytest.raises(ActorError, match=message):
    prepare.prepare_actor('synthetic', str(out), ict_config.get_config(), log=None)
  assert sorted(os.listdir(out)) == sorted(content)
