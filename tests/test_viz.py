"""Colour maps, mesh files, software rendering and plots (aim_jax.viz); headless and fast."""

import matplotlib.image as mpl_image
import numpy as np
import pytest
import trimesh

from aim_jax import mesh_io, viz
from aim_jax.viz import colors as colors_lib
from aim_jax.viz import render

RED = np.array([255, 0, 0, 255], np.uint8)
BLUE = np.array([0, 0, 255, 255], np.uint8)


def _sphere(subdivisions=3, radius=50.0):
  mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
  return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def _quad(x0, x1, y0, y1, z, flip=False):
  """Two triangles of an axis-aligned square at depth z, facing +z (or -z when flipped)."""
  v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)
  f = np.array([[0, 1, 2], [0, 2, 3]])
  return v, (f[:, ::-1] if flip else f)


def _two_quads(near_flipped=False):
  """A red far quad (z = 0) and a blue near quad (z = 5), the near one listed first."""
  v_near, f_near = _quad(-5.0, 15.0, -5.0, 15.0, 5.0, flip=near_flipped)
  v_far, f_far = _quad(-15.0, 5.0, -15.0, 5.0, 0.0)
  vertices = np.concatenate([v_near, v_far])
  faces = np.concatenate([f_near, f_far + 4])
  colors = np.concatenate([np.tile(BLUE, (4, 1)), np.tile(RED, (4, 1))])
  return vertices, faces, colors


def _pixel(image, x, y, limits=(-20.0, 20.0, -20.0, 20.0)):
  """The RGB pixel at world (x, y) of a square front-view image rendered with `limits`."""
  h, w = image.shape[:2]
  col = int((x - limits[0]) / (limits[1] - limits[0]) * w)
  row = int((limits[3] - y) / (limits[3] - limits[2]) * h)
  return image[row, col].astype(int)


def _foreground(image):
  """(H, W) bool: pixels that are not the white background."""
  rgb = image[..., :3]
  if rgb.dtype != np.uint8:
    rgb = np.round(rgb * 255)
  return (rgb < 245).any(axis=-1)


# ---- colours ---------------------------------------------------------------------------------


def test_scalar_colors_nan_constant_and_range():
  out = viz.scalar_colors(np.array([0.0, np.nan, 1.0, 2.0]))
  assert out.shape == (4, 4) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[1], colors_lib.NAN_RGBA)
  assert (out[:, 3] == 255).all()
  assert not np.array_equal(out[0], out[3])

  constant = viz.scalar_colors(np.full(5, 3.0))
  assert (constant == constant[0]).all() and constant[0, 3] == 255

  all_nan = viz.scalar_colors(np.full(3, np.nan))
  np.testing.assert_array_equal(all_nan, np.tile(colors_lib.NAN_RGBA, (3, 1)))

  clipped = viz.scalar_colors(np.array([-5.0, 0.0, 1.0, 7.0]), vmin=0.0, vmax=1.0)
  np.testing.assert_array_equal(clipped[0], clipped[1])
  np.testing.assert_array_equal(clipped[2], clipped[3])


def test_normal_colors():
  out = viz.normal_colors(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0]]))
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out[0], [255, 128, 128, 255])
  np.testing.assert_array_equal(out[1], [128, 128, 0, 255])
  np.testing.assert_array_equal(out[2], [128, 128, 128, 255])


# ---- mesh files ------------------------------------------------------------------------------


def _mesh_with_duplicates():
  v, f = _sphere(subdivisions=1)
  # Append coincident copies of the first 5 vertices and re-point some faces at them (a seam),
  # plus one unreferenced vertex.
  vertices = np.concatenate([v, v[:5], [[1.0, 2.0, 3.0]]])
  faces = f.copy()
  for i in range(5):
    rows = np.nonzero((faces == i).any(axis=1))[0][:1]
    faces[rows] = np.where(faces[rows] == i, len(v) + i, faces[rows])
  rng = np.random.default_rng(0)
  colors = rng.integers(0, 256, (len(vertices), 4)).astype(np.uint8)
  return vertices, faces, colors


def test_ply_round_trip_is_exact(tmp_path):
  vertices, faces, colors = _mesh_with_duplicates()
  path = tmp_path / 'a' / 'b' / 'mesh.ply'  # Parent folders do not exist yet.
  mesh_io.write_colored_mesh(str(path), vertices, faces, colors)
  v, f, c = mesh_io.read_colored_mesh(str(path))
  assert v.shape == vertices.shape
  np.testing.assert_array_equal(v, vertices.astype(np.float32))  # PLY stores float32.
  np.testing.assert_array_equal(f, faces)
  np.testing.assert_array_equal(c, colors)
  assert (v[-6:-1] == v[:5]).all()  # Coincident duplicates are not merged.

  mesh_io.write_colored_mesh(str(tmp_path / 'plain.ply'), vertices, faces)
  v, f, c = mesh_io.read_colored_mesh(str(tmp_path / 'plain.ply'))
  assert c is None and len(v) == len(vertices)
  np.testing.assert_array_equal(f, faces)


def test_obj_round_trip_keeps_topology_and_rgb(tmp_path):
  vertices, faces, colors = _mesh_with_duplicates()
  path = tmp_path / 'mesh.obj'
  mesh_io.write_colored_mesh(str(path), vertices, faces, colors)
  v, f, c = mesh_io.read_colored_mesh(str(path))
  assert v.shape == vertices.shape
  np.testing.assert_allclose(v, vertices, atol=1e-7)
  np.testing.assert_array_equal(f, faces)
  np.testing.assert_array_equal(c[:, :3], colors[:, :3])  # OBJ stores no alpha.


def test_unknown_extension_raises(tmp_path):
  v, f = _sphere(0)
  with pytest.raises(ValueError):
    mesh_io.write_colored_mesh(str(tmp_path / 'mesh.stl'), v, f)


# ---- rendering -------------------------------------------------------------------------------


def test_render_views_writes_png_of_requested_size(tmp_path):
  v, f = _sphere()
  path = tmp_path / 'out' / 'views.png'
  viz.render_views(str(path), v, f, values=v[:, 1], views=('front', 'side', 'three_quarter'),
                   title='height', colorbar_label='y (mm)', size_px=(600, 300))
  image = mpl_image.imread(str(path))
  assert image.shape[:2] == (300, 600)
  assert _foreground(image).mean() > 0.1
  # Every panel shows something.
  for k in range(3):
    assert _foreground(image[40:250, k * 200:(k + 1) * 200]).mean() > 0.2


def test_render_views_colors_and_plain(tmp_path):
  v, f = _sphere(2)
  viz.render_views(str(tmp_path / 'normals.png'), v, f, values=viz.normal_colors(v),
                   views=('front',), size_px=(201, 203))
  viz.render_views(str(tmp_path / 'plain.png'), v, f, views=((30.0, 20.0),), size_px=(150, 160))
  assert mpl_image.imread(str(tmp_path / 'normals.png')).shape[:2] == (203, 201)
  assert mpl_image.imread(str(tmp_path / 'plain.png')).shape[:2] == (160, 150)


def test_sphere_silhouette_is_a_disc():
  radius, size = 50.0, 200
  v, f = _sphere(3, radius)
  image = viz.render_image(v, f, viz.scalar_colors(v[:, 1]), 'front', size_px=(size, size))
  assert image.shape == (size, size, 3)
  mask = _foreground(image)
  # render_mesh frames the bounding box (+- r) with a 3% margin of its side on each side.
  r_px = radius / (radius * (1 + 2 * 0.03)) * size / 2
  rows, cols = np.mgrid[:size, :size]
  dist = np.hypot(rows + 0.5 - size / 2, cols + 0.5 - size / 2)
  inside = dist < 0.96 * r_px
  outside = dist > 1.04 * r_px
  assert mask[inside].mean() > 0.99
  assert mask[outside].mean() < 0.01


def test_shading_makes_the_front_view_non_flat():
  v, f = _sphere(3)
  image = viz.render_image(v, f, np.tile(np.array([200, 200, 200, 255], np.uint8), (len(v), 1)),
                           size_px=(120, 120))
  lit = image[_foreground(image)].mean(axis=1)
  image = image.astype(float)
  assert lit.max() - lit.min() > 80  # Lambert term varies over the sphere.
  # The key light is upper left: that quadrant is brighter than the lower right.
  assert image[30:50, 30:50].mean() > image[70:90, 70:90].mean() + 20


def test_nearer_quad_shows_in_front_view():
  vertices, faces, colors = _two_quads()
  limits = (-20.0, 20.0, -20.0, 20.0)
  image = viz.render_image(vertices, faces, colors, 'front', size_px=(200, 200), limits=limits)
  overlap = _pixel(image, 0.0, 0.0)
  assert overlap[2] > 100 and overlap[0] < 30  # Blue (near) over red (far).
  only_far = _pixel(image, -10.0, -10.0)
  assert only_far[0] > 100 and only_far[2] < 30
  # From behind (azimuth 180) the red quad is nearer but faces away: both are culled.
  back = viz.render_image(vertices, faces, colors, (180.0, 0.0), size_px=(64, 64))
  assert not _foreground(back).any()


def test_back_faces_are_culled():
  vertices, faces, colors = _two_quads(near_flipped=True)
  limits = (-20.0, 20.0, -20.0, 20.0)
  culled = viz.render_image(vertices, faces, colors, 'front', size_px=(200, 200), limits=limits)
  overlap = _pixel(culled, 0.0, 0.0)
  assert overlap[0] > 100 and overlap[2] < 30  # Flipped near quad gone: red shows.
  assert not _foreground(culled)[_pixel_index(10.0, 10.0)]  # Near-only region is empty.
  drawn = viz.render_image(vertices, faces, colors, 'front', size_px=(200, 200), limits=limits,
                           cull_backfaces=False)
  overlap = _pixel(drawn, 0.0, 0.0)
  assert overlap[2] > 100 and overlap[0] < 30


def _pixel_index(x, y, size=200, limits=(-20.0, 20.0, -20.0, 20.0)):
  col = int((x - limits[0]) / (limits[1] - limits[0]) * size)
  row = int((limits[3] - y) / (limits[3] - limits[2]) * size)
  return row, col


def test_views_look_along_the_right_axes():
  # A long bar along +z (the nose direction): thin in front view, long in side view.
  bar = trimesh.creation.box((4.0, 4.0, 40.0))
  v, f = np.asarray(bar.vertices), np.asarray(bar.faces)
  np.testing.assert_allclose(render.view_rotation('front'), np.eye(3), atol=1e-12)
  side = render.project(np.array([[0.0, 0.0, 1.0]]), 'side')[0]
  np.testing.assert_allclose(side, [-1.0, 0.0, 0.0], atol=1e-12)  # Nose to the image's left.
  front = _foreground(viz.render_image(v, f, None, 'front', size_px=(100, 100),
                                       limits=(-25, 25, -25, 25)))
  side = _foreground(viz.render_image(v, f, None, 'side', size_px=(100, 100),
                                      limits=(-25, 25, -25, 25)))
  assert front.sum() < 0.2 * side.sum()


def test_render_grid(tmp_path):
  v, f = _sphere(2)
  thickness = 5.0 + v[:, 2] / 50.0
  panels = [
      dict(vertices=v, faces=f, values=thickness, title='ground truth', vmin=4, vmax=6,
           label='thickness (mm)'),
      dict(vertices=v * 0.5, faces=f, values=thickness + 0.1, title='learned', vmin=4, vmax=6,
           cmap='magma', label='thickness (mm)', view='side'),
      dict(vertices=v, faces=f, colors=viz.normal_colors(v), title='normals'),
  ]
  path = tmp_path / 'grid.png'
  viz.render_grid(str(path), panels, ncols=2, panel_px=(150, 170), title='cmp',
                  share_limits=True)
  image = mpl_image.imread(str(path))
  assert image.shape[:2] == (2 * 170 + 30, 2 * 150)
  assert _foreground(image[30:, 150:]).mean() > 0.05  # The second panel (half size) exists.


def test_render_mesh_on_user_axes():
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(2, 2))
  ax = fig.add_subplot(1, 1, 1)
  v, f = _sphere(1)
  collection = viz.render_mesh(ax, v, f, viz.scalar_colors(v[:, 0]), view='three_quarter')
  assert 0 < len(collection.get_paths()) < len(f)  # Back half culled.


# ---- plots -----------------------------------------------------------------------------------


def test_plots_written(tmp_path):
  steps = np.arange(200)
  curves = {'total': np.exp(-steps / 50.0) + 1e-3, 'shape': np.linspace(1, 0, 200),
            'jaw': np.where(steps % 7 == 0, np.nan, 0.5)}
  path = viz.plot_loss_curves(str(tmp_path / 'p' / 'loss.png'), steps, curves, title='loss',
                              smooth=10)
  assert mpl_image.imread(path).shape[:2] == (500, 800)
  assert _foreground(mpl_image.imread(path)).mean() > 0.01
  viz.plot_loss_curves(str(tmp_path / 'loss_raw.png'), steps, {'a': curves['total']})

  path = viz.plot_per_frame_error(str(tmp_path / 'err.png'),
                                  {'aim': np.random.default_rng(0).random(50), 'base': np.ones(40)})
  assert _foreground(mpl_image.imread(path)).mean() > 0.01

  path = viz.plot_bars(str(tmp_path / 'bars.png'), ['full', 'no anatomy', 'no symmetry loss'],
                       [1.2, 1.8, 1.5], errors=[0.1, 0.2, 0.1], reference=[1.1, np.nan, 1.4],
                       ylabel='mean error (mm)')
  assert _foreground(mpl_image.imread(path)).mean() > 0.01


def test_loglog_slope():
  x = np.array([25.0, 50.0, 100.0, 200.0])
  np.testing.assert_allclose(viz.loglog_slope(x, 3.0 * x ** 1.5), 1.5, rtol=1e-9)
  np.testing.assert_allclose(viz.loglog_slope(x, np.full(4, 7.0)), 0.0, atol=1e-9)
  # Non-positive or non-finite pairs are left out; fewer than two sizes give NaN.
  np.testing.assert_allclose(viz.loglog_slope(x, [np.nan, 50.0, 0.0, 200.0]), 1.0, rtol=1e-9)
  assert np.isnan(viz.loglog_slope([10.0, 10.0], [1.0, 2.0]))


def test_scaling_plot_written(tmp_path):
  x = np.array([1e3, 4e3, 1.6e4])
  panels = [viz.ScalingPanel('vs vertices', 'vertices', {'learning': (x, x / 100),
                                                         'fitting': (x, 5 + x / 1e3)}),
            viz.ScalingPanel('vs width', 'hidden', {'learning': ([64, 128], [2.0, np.nan])},
                             slopes=(1.0, 2.0)),
            viz.ScalingPanel('empty', 'frames', {}, slopes=())]
  path = viz.plot_scaling(str(tmp_path / 's' / 'scaling.png'), panels, title='scaling')
  image = mpl_image.imread(path)
  assert image.shape[:2] == (420, 3 * 420)
  assert _foreground(image).mean() > 0.01
  with pytest.raises(ValueError, match='sizes <= 0'):
    viz.plot_scaling(str(tmp_path / 'bad.png'), [viz.ScalingPanel('t', 'x', {'a': ([0, 1],
                                                                               [1, 2])})])
