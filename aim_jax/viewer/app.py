"""The browser viewer: a thin viser layer over `viewer/scene.py` (which holds every decision).

Scene nodes (names under which `server.scene` holds them; mm scaled by `SCALE`):
  /model/skin, /model/constraints           the model's neutral skin, the constraint points q
  /anatomy/surface, /anatomy/skull, /anatomy/mandible, /anatomy/constraints   the learned
                                            anatomy surface (bone points at the neutral's
                                            vertices, skin faces), the bones, the constraints' b*
  /track/<name>/{skin,skull,mandible}       each performance column (ground truth first), the
                                            mandible moved by the column's jaw at the frame
  /label/<column>                           the column labels
GUI: checkboxes for each kind of node, colour dropdowns (the neutral's; the performance's),
skin opacity, a thickness-scale preview; with a performance a frame slider, play / pause and
playback speed.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import trimesh

from aim_jax.viewer import browser, require_viser
from aim_jax.viewer import data as data_lib
from aim_jax.viewer import scene as scene_lib

SCALE = 0.01  # Scene units per mm: a head is about 2 units wide, viser's default scale.
LABEL_LIFT_MM = 12.0  # Labels sit this far above a column's top.
SHOW = ('skin', 'anatomy surface', 'skull', 'mandible', 'constraints')
FOV_DEG = 50.0  # The initial camera's vertical field of view.
ASPECT = 4.0 / 3.0  # The narrowest browser view the initial camera frames the scene for.
PANEL = 0.25  # About the fraction of a 1280-px-wide window that viser's control panel covers.


def mesh_glb(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray,
             opacity: float = 1.0) -> bytes:
  """A GLB of a mesh with per-vertex colours (viser's meshes take one colour only).

  Args:
    vertices: (V, 3) mm; faces: (T, 3) int; colors: (V, 4) uint8 RGBA.
    opacity: 1 opaque; below 1 the material blends (the bones show through the skin).
  Returns:
    The GLB bytes: vertex normals, COLOR_0 and one double-sided, non-metallic material.
  """
  mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces),
                         vertex_colors=np.asarray(colors, np.uint8), process=False)

  def material(tree):
    tree['materials'] = [{
        'pbrMetallicRoughness': {'baseColorFactor': [1.0, 1.0, 1.0, float(opacity)],
                                 'metallicFactor': 0.0, 'roughnessFactor': 0.75},
        'alphaMode': 'BLEND' if opacity < 1.0 else 'OPAQUE', 'doubleSided': True}]
    for entry in tree['meshes']:
      for primitive in entry['primitives']:
        primitive['material'] = 0

  return trimesh.exchange.gltf.export_glb(mesh, include_normals=True,
                                          tree_postprocessor=material)


class Viewer:
  """The scene and GUI of one model (and optionally one performance) on a viser server.

  `environment`: viser's image-based lighting (an HDR map, bundled); off, the default lights
  alone (flatter, and several seconds faster to first frame in a software-WebGL browser).

  Attributes:
    server: the `viser.ViserServer`.
    nodes: scene node name -> handle, every node this viewer added.
    gui: GUI label -> handle.
  """

  def __init__(self, server, model: scene_lib.ModelScene,
               performance: Optional[scene_lib.Performance] = None, color: str = 'thickness',
               environment: bool = True):
    if color not in scene_lib.COLOR_MODES:
      raise ValueError(f'color must be one of {scene_lib.COLOR_MODES}, got {color!r}')
    self.server = server
    self.model = model
    self.performance = performance
    self.nodes: Dict[str, object] = {}
    self.gui: Dict[str, object] = {}
    self._lock = threading.RLock()
    self._playing = threading.Event()
    self._stop = threading.Event()
    self._frame = 0
    columns = ['model', 'anatomy'] + ([t.name for t in performance.columns]
                                      if performance is not None else [])
    self.offsets = scene_lib.column_offsets(columns, scene_lib.column_width(model.skin))
    server.scene.set_up_direction('+y')
    server.scene.configure_default_lights(True, cast_shadow=False)  # Shadows cost, show little.
    if not environment:  # No image-based lighting: much faster in a software-WebGL browser.
      server.scene.configure_environment_map(None)
    self._build_gui(color)
    self._build_scene()
    self.place_camera()
    self._player = threading.Thread(target=self._play_loop, daemon=True)
    self._player.start()

  # GUI ------------------------------------------------------------------------------------

  def _build_gui(self, color: str):
    gui = self.server.gui
    with gui.add_folder('Show'):
      for label in SHOW:
        handle = gui.add_checkbox(label, initial_value=label != 'constraints')
        handle.on_update(lambda _: self._apply_visibility())
        self.gui[label] = handle
    with gui.add_folder('Colour'):
      self.gui['neutral colour'] = gui.add_dropdown('neutral', scene_lib.COLOR_MODES,
                                            initial_value=color,
                                            hint='the neutral and the anatomy surface')
      if self.performance is not None:
        self.gui['performance colour'] = gui.add_dropdown(
            'performance', scene_lib.COLOR_MODES,
            initial_value='error' if self.performance.truth is not None else 'none',
            hint='error: per vertex against the ground truth at the frame')
      self.gui['opacity'] = gui.add_slider('skin opacity', 0.1, 1.0, 0.05, 1.0)
      for name in ('neutral colour', 'performance colour', 'opacity'):
        if name in self.gui:
          self.gui[name].on_update(lambda _: self.redraw())
    with gui.add_folder('Thickness edit preview'):
      self.gui['thickness'] = gui.add_slider('thickness x', 0.0, 2.0, 0.05, 1.0,
                                             hint='s0 = B + x D N at the neutral')
      self.gui['thickness'].on_update(lambda _: self._redraw_model())
    if self.performance is not None:
      p = self.performance
      with gui.add_folder('Performance'):
        self.gui['frame'] = gui.add_slider('frame', 0, max(p.num_frames - 1, 1), 1, 0)
        self.gui['frame'].on_update(lambda event: self.show_frame(int(event.target.value)))
        self.gui['play'] = gui.add_button('play / pause')
        self.gui['play'].on_click(lambda _: self.toggle_play())
        self.gui['fps'] = gui.add_slider('frames per second', 1, 30, 1, 10)
        self.gui['errors'] = gui.add_markdown('')
    self.gui['info'] = gui.add_markdown(self._info())

  def _info(self) -> str:
    m = self.model
    lines = [f'**{m.name}**: {len(m.skin)} vertices, {len(m.constraint_points)} constraints']
    if self.performance is not None:
      p = self.performance
      truth = 'ground truth known' if p.truth is not None else 'no ground truth'
      lines.append(f'{p.source}: {p.num_frames} frames, {truth}')
    return '\n\n'.join(lines)

  # Scene ----------------------------------------------------------------------------------

  def _position(self, column: str, mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    return (self.offsets[column] + np.asarray(mm, np.float64)) * SCALE

  def _skin(self, name: str, column: str, vertices: np.ndarray, colors: np.ndarray):
    data = mesh_glb(vertices, self.model.faces, colors, self.gui['opacity'].value)
    handle = self.nodes.get(name)
    if handle is None:
      self.nodes[name] = self.server.scene.add_glb(name, data, scale=SCALE,
                                                   position=self._position(column),
                                                   cast_shadow=False, receive_shadow=False)
    else:
      handle.glb_data = data

  def _bone(self, name: str, column: str, vertices: np.ndarray, faces: np.ndarray):
    handle = self.nodes.get(name)
    if handle is None:
      self.nodes[name] = self.server.scene.add_mesh_simple(
          name, np.asarray(vertices, np.float32), np.asarray(faces), color=scene_lib.BONE_RGB,
          scale=SCALE, position=self._position(column), side='double', cast_shadow=False,
          receive_shadow=False)
    else:
      handle.vertices = np.asarray(vertices, np.float32)

  def _label(self, column: str, text: str, top_mm: float):
    name = f'/label/{column}'
    handle = self.nodes.get(name)
    if handle is None:
      self.nodes[name] = self.server.scene.add_label(
          name, text, position=self._position(column, (0.0, top_mm + LABEL_LIFT_MM, 0.0)),
          anchor='bottom-center')
    else:
      handle.text = text

  def _build_scene(self):
    m = self.model
    top = float(m.skin[:, 1].max())
    self._redraw_model()
    self._skin('/anatomy/surface', 'anatomy', m.fields['bone'], self._colors())
    self._bone('/anatomy/skull', 'anatomy', m.skull.vertices, m.skull.faces)
    self._bone('/anatomy/mandible', 'anatomy', m.mandible.vertices, m.mandible.faces)
    if len(m.constraint_points):
      colors = scene_lib.constraint_colors(m.constraint_bones)
      for name, column, points in (('/model/constraints', 'model', m.constraint_points),
                                   ('/anatomy/constraints', 'anatomy',
                                    m.constraint_bone_points)):
        self.nodes[name] = self.server.scene.add_point_cloud(
            name, points, colors, point_size=1.6, scale=SCALE, position=self._position(column),
            point_shape='circle')
    self._label('model', 'neutral', top)
    self._label('anatomy', 'anatomy', top)
    if self.performance is not None:
      for track in self.performance.columns:
        self._bone(f'/track/{track.name}/skull', track.name, m.skull.vertices, m.skull.faces)
      self.show_frame(0)
    self._apply_visibility()

  def _colors(self) -> np.ndarray:
    return self.model.colors[self.gui['neutral colour'].value]

  def _redraw_model(self):
    with self._lock:
      skin = scene_lib.thickness_preview(self.model.fields, self.gui['thickness'].value)
      self._skin('/model/skin', 'model', skin, self._colors())

  def redraw(self):
    """Redraws every coloured mesh (after a colour or opacity change)."""
    with self._lock:
      self._redraw_model()
      self._skin('/anatomy/surface', 'anatomy', self.model.fields['bone'], self._colors())
      if self.performance is not None:
        self.show_frame(self._frame)

  def show_frame(self, frame: int):
    """Poses every performance column at `frame`: skin, colours, mandible, labels."""
    p, m = self.performance, self.model
    if p is None:
      return
    frame = int(np.clip(frame, 0, p.num_frames - 1))
    with self._lock:
      self._frame = frame
      mode = self.gui['performance colour'].value
      errors = dict(scene_lib.frame_summary(p, frame))
      top = float(m.skin[:, 1].max())
      for track in p.columns:
        self._skin(f'/track/{track.name}/skin', track.name, track.frames[frame],
                   scene_lib.track_colors(m, p, track, frame, mode))
        self._bone(f'/track/{track.name}/mandible', track.name,
                   scene_lib.posed_mandible(m.mandible.vertices, track, frame, m.pivot),
                   m.mandible.faces)
        self._label(track.name, scene_lib.column_label(track, errors.get(track.name)), top)
      self.gui['errors'].content = self._frame_text(frame, errors)
      self._apply_visibility()

  def _frame_text(self, frame: int, errors: Dict[str, Optional[float]]) -> str:
    p = self.performance
    if p.truth is None:
      return f'frame {frame}'
    rows = ' \u00b7 '.join(f'{name} {value:.3f} mm' for name, value in errors.items())
    return f'frame {frame}: mean error {rows} (colour scale 0 to {p.error_vmax:.2f} mm)'

  def _apply_visibility(self):
    shown = {label: bool(self.gui[label].value) for label in SHOW}
    for name, handle in self.nodes.items():
      kind = name.rsplit('/', 1)[-1]
      visible = {'skin': shown['skin'], 'surface': shown['anatomy surface'],
                 'skull': shown['skull'], 'mandible': shown['mandible'],
                 'constraints': shown['constraints']}.get(kind, True)
      if handle.visible != visible:
        handle.visible = visible

  def place_camera(self, aspect: float = ASPECT):
    """Sets the camera new browsers start with (and 'Reset View' returns to): in front of
    every column, framed for a view of width / height `aspect` beside the control panel."""
    m = self.model
    points = [m.skin] * len(self.offsets)
    lower, upper = scene_lib.scene_bounds(points, list(self.offsets.values()))
    upper = upper + np.array([0.0, LABEL_LIFT_MM + 10.0, 0.0])
    position, look_at = scene_lib.front_camera(lower, upper, FOV_DEG, aspect, panel=PANEL)
    camera = self.server.initial_camera
    camera.fov = float(np.radians(FOV_DEG))
    camera.up = (0.0, 1.0, 0.0)
    camera.look_at = tuple(look_at * SCALE)
    camera.position = tuple(position * SCALE)

  # Playback -------------------------------------------------------------------------------

  def toggle_play(self):
    """Starts or pauses playback."""
    if self._playing.is_set():
      self._playing.clear()
    else:
      self._playing.set()

  def _play_loop(self):
    while not self._stop.is_set():
      if not self._playing.wait(timeout=0.2) or self.performance is None:
        continue
      start = time.perf_counter()
      self.gui['frame'].value = (self._frame + 1) % self.performance.num_frames
      wait = 1.0 / max(1, self.gui['fps'].value) - (time.perf_counter() - start)
      if wait > 0:
        time.sleep(wait)

  def close(self):
    """Stops playback (the server is stopped by its owner)."""
    self._stop.set()
    self._playing.clear()
    self._player.join(timeout=2.0)


def node_names(viewer: Viewer) -> List[str]:
  """Every scene node name the viewer added, sorted."""
  return sorted(viewer.nodes)


def start_server(host: str = '127.0.0.1', port: int = 8080):
  """A viser server on host:port (the next free port when taken), or `ViserMissing`."""
  viser = require_viser()
  return viser.ViserServer(host=host, port=port, verbose=False)


def url_of(server) -> str:
  """The address to open in a browser."""
  host = server.get_host()
  host = 'localhost' if host in ('127.0.0.1', '0.0.0.0', '::') else host
  return f'http://{host}:{server.get_port()}'


def open_viewer(model_dir: str, fit_dir: Optional[str] = None, ground_truth: str = 'auto',
                host: str = '127.0.0.1', port: int = 8080, color: str = 'thickness',
                environment: bool = True,
                log: Optional[Callable[[str], None]] = print) -> Viewer:
  """Reads a model directory (and a performance directory), starts a server and builds the
  viewer on it. The caller stops it (`close`)."""
  require_viser()  # Fails before anything is read.
  model, loaded, actor = data_lib.load_model_scene(model_dir)
  performance = None
  if fit_dir:
    performance = data_lib.load_performance(fit_dir, loaded, actor, ground_truth, log)
  server = start_server(host, port)
  try:
    return Viewer(server, model, performance, color, environment)
  except BaseException:
    server.stop()
    raise


def close(viewer: Viewer):
  """Stops a viewer's playback and its server."""
  viewer.close()
  viewer.server.stop()


def rendered(server, size: Tuple[int, int] = (320, 240),
             timeout: float = 30.0) -> Optional[np.ndarray]:
  """A frame drawn by the first connected browser ((H, W, 3) uint8), None without one."""
  clients = list(server.get_clients().values())
  if not clients:
    return None
  return clients[0].get_render(size[1], size[0], timeout=timeout)


def drawn(server, min_std: float = 5.0) -> bool:
  """True once a connected browser has drawn something (not a uniform background)."""
  image = rendered(server)
  return image is not None and browser.image_stats(image)['std'] > min_std


def screenshot(viewer: Viewer, path: str, frame: int = 0, size: Tuple[int, int] = (1280, 800),
               timeout: float = 120.0) -> str:
  """A PNG of the viewer in headless Chromium (`browser.screenshot`) at `frame`."""
  if viewer.performance is not None:
    viewer.gui['frame'].value = int(frame)
  viewer.place_camera(size[0] / size[1])
  return browser.screenshot(url_of(viewer.server), path, lambda: drawn(viewer.server),
                            size=size, timeout=timeout)


def serve_forever(viewer: Viewer, log: Callable[[str], None] = print):
  """Serves until Ctrl-C, then stops the server."""
  log(f'viewer: open {url_of(viewer.server)} in a browser (Ctrl-C stops it)')
  try:
    while True:
      time.sleep(1.0)
  except KeyboardInterrupt:
    log('viewer stopped')
  finally:
    close(viewer)
