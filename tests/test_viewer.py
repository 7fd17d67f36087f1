"""The browser viewer (aim_jax/viewer): the pure scene functions, reading fitting and retargeting
directories, the scene nodes a server holds, and the page in a real headless Chromium (skipped
with a message when /usr/bin/chromium is absent: scripts/install_browser.sh installs it)."""

import json
import os
import socket
import sys
import time

import numpy as np
import pytest
import trimesh
from PIL import Image
from tiny_models import make_model_workdir

pytest.importorskip('viser', reason="viser is not installed: pip install -e '.[viewer]'")

from aim_jax import files, rigid_np, viz  # noqa: E402
from aim_jax.data import synthetic_performance  # noqa: E402
from aim_jax.fitting import methods  # noqa: E402
from aim_jax.runs import identity, learn_outputs, reporting  # noqa: E402
from aim_jax.viewer import ViserMissing, app, browser, data, require_viser, scene  # noqa: E402
from configs import fit_test, retarget_test  # noqa: E402

NOISE_MM = {'aim': 0.2, 'gbs': 0.8}


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def hand_fields(actor):
  """Fields of a made-up model of the tiny actor whose neutral is B + D N exactly (mm)."""
  v = actor.num_vertices
  normal = np.tile([0.0, 0.0, 1.0], (v, 1))
  thickness = np.linspace(2.0, 12.0, v)
  bone = actor.neutral - thickness[:, None] * normal
  shapes = actor.shapes + 0.1 * np.arange(v)[None, :, None] / v
  shapes[0] = actor.neutral
  return {'bone': bone, 'normal': normal, 'thickness': thickness,
          'skinning': np.linspace(0.0, 1.0, v), 'shapes': shapes}


def hand_scene(actor):
  points = actor.neutral[:5]
  return scene.model_scene(actor.name, actor.faces, hand_fields(actor), actor.shapes,
                           actor.skull, actor.mandible, actor.pivot, points, points - 5.0,
                           np.array([0, 1, 0, 1, 1]))


# The pure scene functions ---------------------------------------------------------------------


def test_model_scene_colours_are_the_learning_runs_colours(tiny_actor):
  fields = hand_fields(tiny_actor)
  model = hand_scene(tiny_actor)
  error = learn_outputs.reconstruction_error(fields['shapes'], tiny_actor.shapes)
  expected = learn_outputs.field_colors(fields, error)
  assert set(model.colors) == set(scene.COLOR_MODES)
  for mode in ('thickness', 'skinning', 'normal', 'error'):
    np.testing.assert_array_equal(model.colors[mode], expected[mode])
  np.testing.assert_array_equal(model.colors['none'][0], scene.SKIN_RGBA)
  np.testing.assert_array_equal(model.skin, tiny_actor.neutral.astype(np.float32))
  np.testing.assert_array_equal(scene.constraint_colors(np.array([0, 1])),
                                [scene.CONSTRAINT_RGB['cranium'],
                                 scene.CONSTRAINT_RGB['mandible']])


def test_thickness_preview_scales_the_tissue_along_the_normal(tiny_actor):
  fields = hand_fields(tiny_actor)
  np.testing.assert_allclose(scene.thickness_preview(fields, 1.0), tiny_actor.neutral, atol=1e-4)
  np.testing.assert_allclose(scene.thickness_preview(fields, 0.0), fields['bone'], atol=1e-4)
  moved = scene.thickness_preview(fields, 1.5) - tiny_actor.neutral
  np.testing.assert_allclose(moved[:, 2], 0.5 * fields['thickness'], atol=1e-4)


def test_columns_sit_side_by_side_and_the_camera_sees_them_all():
  skin = np.array([[-40.0, -50.0, 0.0], [40.0, 60.0, 30.0]])
  width = scene.column_width(skin)
  assert width == pytest.approx(100.0)
  offsets = scene.column_offsets(['model', 'anatomy', 'truth', 'aim', 'gbs'], width)
  assert list(offsets) == ['model', 'anatomy', 'truth', 'aim', 'gbs']
  np.testing.assert_allclose(offsets['gbs'], [400.0, 0.0, 0.0])
  lower, upper = scene.scene_bounds([skin] * 5, list(offsets.values()))
  np.testing.assert_allclose(lower, [-40.0, -50.0, 0.0])
  np.testing.assert_allclose(upper, [440.0, 60.0, 30.0])
  for panel in (0.0, 0.25):
    position, look_at = scene.front_camera(lower, upper, fov_deg=50.0, aspect=1.6, panel=panel)
    assert position[2] > upper[2] and np.allclose(position[:2], look_at[:2])
    # Every corner projects inside the part of the view the panel leaves free.
    tan = np.tan(np.radians(25.0))
    for corner in np.array(np.meshgrid(*zip(lower, upper))).reshape(3, -1).T:
      depth = position[2] - corner[2]
      x = (corner[0] - position[0]) / (depth * tan * 1.6)
      y = (corner[1] - position[1]) / (depth * tan)
      assert -1.0 <= x <= 1.0 - 2.0 * panel + 1e-9 and -1.0 <= y <= 1.0


def test_the_mandible_moves_by_the_tracks_jaw_about_the_pivot(tiny_actor):
  angle = np.radians(10.0)
  rotation = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)],
                       [0.0, np.sin(angle), np.cos(angle)]])
  frames = np.repeat(tiny_actor.neutral[None], 2, axis=0)
  track = scene.Track('aim', frames, np.stack([np.eye(3), rotation]),
                      np.array([[0.0, 0.0, 0.0], [0.0, -1.0, 2.0]]))
  mandible = tiny_actor.mandible.vertices
  posed = scene.posed_mandible(mandible, track, 1, tiny_actor.pivot)
  np.testing.assert_allclose(posed, rigid_np.rigid_about_pivot(
      mandible, rotation, np.array([0.0, -1.0, 2.0]), tiny_actor.pivot), atol=1e-4)
  np.testing.assert_allclose(scene.posed_mandible(mandible, track, 0, tiny_actor.pivot),
                             mandible, atol=1e-5)
  no_jaw = scene.Track('gbs', frames)
  assert not no_jaw.has_jaw
  np.testing.assert_array_equal(scene.posed_mandible(mandible, no_jaw, 1, tiny_actor.pivot),
                                mandible)


def test_error_colours_per_frame_against_the_truth(tiny_actor):
  model = hand_scene(tiny_actor)
  rng = np.random.default_rng(0)
  truth_frames = tiny_actor.neutral[None] + rng.normal(0.0, 1.0, (3, tiny_actor.num_vertices, 3))
  truth = scene.Track(scene.TRUTH, truth_frames)
  aim = scene.Track('aim', truth_frames + 0.1)
  gbs = scene.Track('gbs', truth_frames + rng.normal(0.0, 1.0, truth_frames.shape))
  vmax = scene.error_vmax([aim, gbs], truth, [0, 1, 2])
  assert vmax == pytest.approx(reporting.error_vmax(
      [np.linalg.norm(t.frames - truth_frames, axis=-1) for t in (aim, gbs)]))
  performance = scene.Performance('fit', (aim, gbs), truth, vmax)
  assert [t.name for t in performance.columns] == ['truth', 'aim', 'gbs']
  error = np.linalg.norm(gbs.frames[2] - truth_frames[2], axis=-1)
  np.testing.assert_array_equal(scene.track_colors(model, performance, gbs, 2, 'error'),
                                viz.scalar_colors(error, 'inferno', 0.0, vmax))
  np.testing.assert_array_equal(scene.track_colors(model, performance, truth, 2, 'error'),
                                model.colors['none'])
  np.testing.assert_array_equal(scene.track_colors(model, performance, aim, 2, 'skinning'),
                                model.colors['skinning'])
  summary = dict(scene.frame_summary(performance, 2))
  assert summary['aim'] == pytest.approx(np.sqrt(3) * 0.1, rel=1e-4)
  assert scene.column_label(gbs, summary['gbs']).startswith('gbs (')
  unknown = scene.Performance('fit', (aim,), None)
  np.testing.assert_array_equal(scene.track_colors(model, unknown, aim, 0, 'error'),
                                model.colors['none'])
  assert scene.frame_summary(unknown, 0) == [('aim', None)]


def glb_parts(glb: bytes):
  """(JSON tree, binary chunk) of a GLB file."""
  length = int.from_bytes(glb[12:16], 'little')
  tree = json.loads(glb[20:20 + length])
  return tree, glb[20 + length + 8:]


def test_coloured_meshes_travel_as_glb_with_their_vertex_colours(tiny_actor):
  colors = hand_scene(tiny_actor).colors['thickness']
  glb = app.mesh_glb(tiny_actor.neutral, tiny_actor.faces, colors, opacity=0.5)
  mesh = trimesh.load(trimesh.util.wrap_as_stream(glb), file_type='glb', force='mesh',
                      process=False)
  np.testing.assert_allclose(mesh.vertices, tiny_actor.neutral, atol=1e-5)
  tree, binary = glb_parts(glb)
  primitive = tree['meshes'][0]['primitives'][0]
  assert {'POSITION', 'NORMAL', 'COLOR_0'} <= set(primitive['attributes'])
  material = tree['materials'][primitive['material']]
  assert material['alphaMode'] == 'BLEND' and material['doubleSided']
  assert material['pbrMetallicRoughness']['baseColorFactor'][3] == 0.5
  accessor = tree['accessors'][primitive['attributes']['COLOR_0']]
  view = tree['bufferViews'][accessor['bufferView']]
  start = view.get('byteOffset', 0) + accessor.get('byteOffset', 0)
  sent = np.frombuffer(binary[start:start + colors.size], np.uint8).reshape(colors.shape)
  np.testing.assert_array_equal(sent, colors)
  opaque, _ = glb_parts(app.mesh_glb(tiny_actor.neutral, tiny_actor.faces, colors))
  assert opaque['materials'][0]['alphaMode'] == 'OPAQUE'


def test_a_missing_viser_is_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, 'viser', None)
  with pytest.raises(ViserMissing) as raised:
    require_viser()
  assert str(raised.value) == "viser is not installed: pip install -e '.[viewer]'"


# Reading model, fitting and retargeting directories -------------------------------------------


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
  """A tiny model directory (tests/tiny_models.py), loaded: (dir, LoadedModel, actor, scene)."""
  path = make_model_workdir(str(tmp_path_factory.mktemp('viewer') / 'model'), seed=0)
  model, loaded, actor = data.load_model_scene(path)
  return path, loaded, actor, model


def write_fit_dir(path, model_path, actor, config=None):
  """A fitting directory in `runs/fit.py`'s layout for the synthetic targets of
  `configs/fit_test.py`: aim (frames and jaws) and gbs (frames), the truth plus noise, and
  the identity and report a fitting run records."""
  config = config or fit_test.get_config()
  targets, truth = methods.synthetic_sequence_targets(config, actor)
  rng = np.random.default_rng(0)
  for method, noise in NOISE_MM.items():
    result = {'frames': (truth['frames'] + rng.normal(0.0, noise, truth['frames'].shape)
                         ).astype(np.float32)}
    if method == 'aim':
      result.update(jaw_rotation=truth['jaw_rotation'],
                    jaw_translation=truth['jaw_translation'] + 0.5)
    files.write_npz(os.path.join(path, method, 'fit.npz'), **result)
  files.write_json(os.path.join(path, 'report.json'), {'config': config.to_dict()})
  files.write_json(os.path.join(path, 'identity.json'),
                   identity.fitting_identity(config, model_path, targets, truth))
  return truth


@pytest.fixture(scope='module')
def tiny_fit(tiny_model, tmp_path_factory):
  path = str(tmp_path_factory.mktemp('viewer') / 'fit')
  truth = write_fit_dir(path, tiny_model[0], tiny_model[2])
  return path, truth


def test_a_fit_directory_gives_every_method_and_its_ground_truth(tiny_model, tiny_fit):
  _, loaded, actor, _ = tiny_model
  path, truth = tiny_fit
  performance = data.load_performance(path, loaded, actor, 'auto', log=None)
  assert [t.name for t in performance.tracks] == ['aim', 'gbs']
  assert [t.name for t in performance.columns] == ['truth', 'aim', 'gbs']
  assert performance.num_frames == fit_test.get_config().synthetic.num_frames
  for track in performance.tracks:
    with np.load(os.path.join(path, track.name, 'fit.npz')) as fit:
      np.testing.assert_array_equal(track.frames, fit['frames'])
      if track.name == 'aim':
        np.testing.assert_array_equal(track.jaw_rotation, fit['jaw_rotation'])
        np.testing.assert_array_equal(track.jaw_translation, fit['jaw_translation'])
  assert performance.tracks[0].has_jaw and not performance.tracks[1].has_jaw
  np.testing.assert_array_equal(performance.truth.frames, truth['frames'])
  summary = dict(scene.frame_summary(performance, 1))
  assert summary['aim'] == pytest.approx(NOISE_MM['aim'] * np.sqrt(8 / np.pi), rel=0.15)
  assert summary['gbs'] > 3 * summary['aim']

  assert data.load_performance(path, loaded, actor, 'none', log=None).truth is None
  truth_file = os.path.join(os.path.dirname(path), 'truth.npz')
  np.savez(truth_file, frames=truth['frames'] / 10.0, units='cm')
  given = data.load_performance(path, loaded, actor, truth_file, log=None)
  np.testing.assert_allclose(given.truth.frames, truth['frames'], rtol=1e-6)


def test_auto_ground_truth_only_for_the_synthetic_targets_the_fit_recorded(tiny_model,
                                                                          tmp_path):
  path, loaded, actor, _ = tiny_model
  config = fit_test.get_config()
  config.synthetic.kind = 'markers'
  write_fit_dir(str(tmp_path), path, actor, config)
  assert data.load_performance(str(tmp_path), loaded, actor, log=None).truth is not None
  other = fit_test.get_config()
  other.synthetic.seed = 7  # The report now names other targets than the identity recorded.
  files.write_json(str(tmp_path / 'report.json'), {'config': other.to_dict()})
  assert data.load_performance(str(tmp_path), loaded, actor, log=None).truth is None
  # 'synthetic' takes the report's performance without the check.
  forced = data.load_performance(str(tmp_path), loaded, actor, 'synthetic', log=None)
  played = synthetic_performance.make_performance(actor, other.synthetic.num_frames, 7)
  np.testing.assert_array_equal(forced.truth.frames, played.frames)
  os.remove(tmp_path / 'report.json')
  with pytest.raises(data.ViewerError, match='ground_truth=synthetic needs'):
    data.load_performance(str(tmp_path), loaded, actor, 'synthetic', log=None)


def test_a_retargeting_directory_gives_aim_and_delta_transfer(tiny_model, tmp_path):
  _, loaded, actor, _ = tiny_model
  config = retarget_test.get_config()
  frames = config.fit.synthetic.num_frames
  played = synthetic_performance.make_performance(actor, frames, config.fit.synthetic.seed)
  files.write_npz(str(tmp_path / 'target_performance.npz'), frames=played.frames + 0.3,
                  jaw_rotation=played.jaw_rotation, jaw_translation=played.jaw_translation,
                  delta_transfer_frames=played.frames - 1.0, units=np.array('mm'))
  files.write_json(str(tmp_path / 'report.json'),
                   {'ground_truth': data.SYNTHETIC_RECIPE, 'source_fit': None,
                    'config': config.to_dict()})
  performance = data.load_performance(str(tmp_path), loaded, actor, log=None)
  assert [t.name for t in performance.columns] == ['truth', 'aim', 'delta_transfer']
  np.testing.assert_allclose(performance.truth.frames, played.frames)
  assert performance.tracks[0].has_jaw and not performance.tracks[1].has_jaw
  summary = dict(scene.frame_summary(performance, 0))
  assert summary['delta_transfer'] == pytest.approx(np.sqrt(3.0), rel=1e-4)


def test_directories_the_viewer_cannot_show_are_one_line(tiny_model, tmp_path):
  _, loaded, actor, _ = tiny_model
  with pytest.raises(data.ViewerError, match='neither a fitting directory'):
    data.load_performance(str(tmp_path), loaded, actor, log=None)
  with pytest.raises(data.ViewerError, match='no such performance directory'):
    data.load_performance(str(tmp_path / 'missing'), loaded, actor, log=None)
  files.write_npz(str(tmp_path / 'aim' / 'fit.npz'), frames=np.zeros((2, 7, 3), np.float32))
  with pytest.raises(data.ViewerError, match='7, 3.*the model has'):
    data.load_performance(str(tmp_path), loaded, actor, log=None)
  with pytest.raises(FileNotFoundError, match='model.json: missing'):
    data.load_model_scene(str(tmp_path))


# The server and a real browser ----------------------------------------------------------------


@pytest.fixture(scope='module')
def viewer(tiny_model, tiny_fit):
  _, loaded, actor, model = tiny_model
  performance = data.load_performance(tiny_fit[0], loaded, actor, log=None)
  server = app.start_server(port=free_port())
  # Without the HDR environment map: the same scene, seconds sooner in software WebGL.
  view = app.Viewer(server, model, performance, environment=False)
  yield view
  app.close(view)


def test_the_server_holds_every_scene_node(viewer):
  expected = {'/model/skin', '/model/constraints', '/anatomy/surface', '/anatomy/skull',
              '/anatomy/mandible', '/anatomy/constraints', '/label/model', '/label/anatomy'}
  for column in ('truth', 'aim', 'gbs'):
    expected |= {f'/track/{column}/{part}' for part in ('skin', 'skull', 'mandible')}
    expected.add(f'/label/{column}')
  assert set(app.node_names(viewer)) == expected
  for name in expected:  # viser's own registry of the scene.
    assert viewer.server.scene.get_handle_by_name(name) is viewer.nodes[name]
  constraints = ('/model/constraints', '/anatomy/constraints')
  assert not any(viewer.nodes[n].visible for n in constraints)  # Off until ticked.
  viewer.gui['constraints'].value = True
  assert all(viewer.nodes[n].visible for n in constraints)
  np.testing.assert_array_equal(viewer.nodes['/anatomy/constraints'].points,
                                viewer.model.constraint_bone_points.astype(np.float16))
  viewer.gui['skull'].value = False
  assert not any(viewer.nodes[n].visible for n in expected if n.endswith('/skull'))
  viewer.gui['skull'].value = True


def test_the_frame_slider_poses_every_column(viewer):
  model, performance = viewer.model, viewer.performance
  viewer.gui['frame'].value = 4
  aim = performance.tracks[0]
  np.testing.assert_allclose(viewer.nodes['/track/aim/mandible'].vertices,
                             scene.posed_mandible(model.mandible.vertices, aim, 4, model.pivot),
                             atol=1e-4)
  np.testing.assert_allclose(viewer.nodes['/track/gbs/mandible'].vertices,
                             model.mandible.vertices, atol=1e-5)
  errors = dict(scene.frame_summary(performance, 4))
  assert viewer.nodes['/label/aim'].text == scene.column_label(aim, errors['aim'])
  assert 'frame 4' in viewer.gui['errors'].content
  skin = viewer.nodes['/track/gbs/skin'].glb_data
  viewer.gui['performance colour'].value = 'skinning'
  assert viewer.nodes['/track/gbs/skin'].glb_data != skin
  before = viewer.nodes['/model/skin'].glb_data
  viewer.gui['thickness'].value = 1.5
  assert viewer.nodes['/model/skin'].glb_data != before
  viewer.gui['thickness'].value = 1.0
  viewer.gui['performance colour'].value = 'error'


def test_play_advances_the_frames_until_paused(viewer):
  viewer.gui['frame'].value = 0
  viewer.gui['fps'].value = 30
  viewer.toggle_play()
  deadline = time.monotonic() + 10.0
  while viewer.gui['frame'].value < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
  viewer.toggle_play()
  time.sleep(0.3)
  paused = viewer.gui['frame'].value
  assert paused >= 2
  time.sleep(0.3)
  assert viewer.gui['frame'].value == paused


CHROMIUM_MISSING = (f'{browser.CHROMIUM} is not installed (scripts/install_browser.sh installs '
                    'headless Chromium from Debian)')


@pytest.mark.skipif(not os.path.exists(browser.CHROMIUM), reason=CHROMIUM_MISSING)
def test_a_real_browser_draws_the_scene(viewer, tmp_path):
  connected = []
  viewer.server.on_client_connect(lambda client: connected.append(client.client_id))
  path = app.screenshot(viewer, str(tmp_path / 'shot.png'), frame=2, size=(800, 600),
                        timeout=120.0)
  assert connected, 'the browser never connected'
  image = np.asarray(Image.open(path).convert('RGB'))
  assert image.shape[:2] == (600, 800)
  stats = browser.image_stats(image)
  assert stats['std'] > 10.0 and stats['colors'] > 500 and stats['background'] < 0.9, stats
  # The 3D view itself (left of the control panel) shows coloured skin, not a blank canvas.
  view = browser.image_stats(image[100:500, :500])
  assert view['colors'] > 300 and view['background'] < 0.95, view
