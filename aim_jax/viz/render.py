"""Headless software rendering of triangle meshes with matplotlib (no OpenGL, no display).

An orthographic camera looks at the mesh from a named view; triangles facing away are culled,
the rest are shaded (Lambert + ambient applied to their colours, plus a faint white highlight,
so the shape stays readable) and drawn far-to-near as one PolyCollection (painter's
algorithm). Everything is vectorised numpy: an 80k-triangle face takes about 0.5 s per view.

Axes: +x = subject's left, +y up, +z forward (toward the viewer in the front view), mm.
Views: 'front' looks along -z; 'side' looks from the subject's left (+x), so the nose points
to the image's left; 'three_quarter' is halfway between (45 degrees toward the subject's
left). A view can also be an (azimuth, elevation) pair in degrees: azimuth turns the camera
about +y from the front toward +x, elevation raises it (looking down).

Figures are built with `matplotlib.figure.Figure` directly (never pyplot), so nothing is
kept in a global figure registry, and they are cleared after saving.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import matplotlib
import numpy as np
from matplotlib import cm as mpl_cm
from matplotlib import colors as mpl_colors
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from aim_jax.viz import colors as colors_lib

View = Union[str, Tuple[float, float]]

VIEWS = {
    'front': (0.0, 0.0),
    'three_quarter': (45.0, 0.0),
    'side': (90.0, 0.0),
}
DEFAULT_RGBA = np.array([0.80, 0.80, 0.80, 1.0])  # Light grey for meshes without colours.
# Key light in camera coordinates (x right, y up, z toward the viewer): upper left, front.
LIGHT_DIR = np.array([-0.45, 0.55, 1.0]) / np.linalg.norm([-0.45, 0.55, 1.0])
AMBIENT = 0.3
SPECULAR = 0.12
SHININESS = 24.0
BACKGROUND = 'white'
DPI = 100


# ---------------------------------------------------------------------------------------------
# Camera.


def view_angles(view: View) -> Tuple[float, float]:
  """(azimuth, elevation) in degrees for a view name or pair."""
  if isinstance(view, str):
    if view not in VIEWS:
      raise ValueError(f'unknown view {view!r}; use one of {sorted(VIEWS)} or (azim, elev)')
    return VIEWS[view]
  azimuth, elevation = view
  return float(azimuth), float(elevation)


def view_rotation(view: View) -> np.ndarray:
  """World-to-camera rotation of an orthographic view.

  Args:
    view: a name in `VIEWS` or (azimuth, elevation) in degrees.
  Returns:
    (3, 3) rotation whose rows are the camera's right, up and toward-viewer axes in world
    coordinates (so camera = R @ world; camera z grows toward the viewer).
  """
  azimuth, elevation = np.radians(view_angles(view))
  toward = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation),
                     np.cos(elevation) * np.cos(azimuth)])
  right = np.array([np.cos(azimuth), 0.0, -np.sin(azimuth)])
  up = np.cross(toward, right)
  return np.stack([right, up, toward])


def project(vertices: np.ndarray, view: View) -> np.ndarray:
  """World points to camera coordinates (orthographic; no centring or scaling).

  Args:
    vertices: (V, 3) mm.
    view: see `view_rotation`.
  Returns:
    (V, 3) mm: image x (right), image y (up), depth (larger = nearer the viewer).
  """
  return np.asarray(vertices, np.float64).reshape(-1, 3) @ view_rotation(view).T


# ---------------------------------------------------------------------------------------------
# Colours and shading.


def _face_rgba(colors: Optional[np.ndarray], n_vertices: int, n_faces: int,
               faces: np.ndarray) -> np.ndarray:
  """(F, 4) float RGBA from per-vertex (V, 3|4) or per-face (F, 3|4) colours, or grey."""
  if colors is None:
    return np.broadcast_to(DEFAULT_RGBA, (n_faces, 4)).copy()
  rgba = colors_lib.as_rgba_float(colors)
  if len(rgba) == n_vertices:
    return rgba[faces].mean(axis=1)
  if len(rgba) == n_faces:
    return rgba
  raise ValueError(f'{len(rgba)} colours for {n_vertices} vertices and {n_faces} faces')


def _unit(x: np.ndarray) -> np.ndarray:
  length = np.linalg.norm(x, axis=-1, keepdims=True)
  return x / np.where(length > 0, length, 1.0)


def _vertex_normals(face_normals: np.ndarray, faces: np.ndarray, n_vertices: int) -> np.ndarray:
  """(V, 3) unit vertex normals: sums of the area-weighted normals of adjacent faces."""
  index = faces.reshape(-1)
  summed = np.stack([
      np.bincount(index, weights=np.repeat(face_normals[:, k], 3), minlength=n_vertices)
      for k in range(3)
  ], axis=-1)
  return _unit(summed)


def lambert(normals: np.ndarray, light: np.ndarray = LIGHT_DIR,
            ambient: float = AMBIENT) -> np.ndarray:
  """Ambient + diffuse brightness factor: ambient + (1 - ambient) * max(0, n . l).

  Args:
    normals: (N, 3) unit normals (camera coordinates, like `light`).
    light: (3,) unit direction toward the light.
    ambient: brightness of surfaces facing away from the light, in [0, 1].
  Returns:
    (N,) factors in [ambient, 1].
  """
  return ambient + (1.0 - ambient) * np.clip(normals @ light, 0.0, 1.0)


def highlight(normals: np.ndarray, light: np.ndarray = LIGHT_DIR, specular: float = SPECULAR,
              shininess: float = SHININESS) -> np.ndarray:
  """White Blinn-Phong highlight, specular * max(0, n . h)^shininess, viewer along +z.

  Args:
    normals: (N, 3) unit normals in camera coordinates.
    light: (3,) unit direction toward the light.
    specular: highlight strength in [0, 1]; 0 gives zeros.
    shininess: exponent.
  Returns:
    (N,) amounts added to each RGB channel.
  """
  if specular <= 0:
    return np.zeros(normals.shape[:-1])
  half = _unit(np.asarray(light, np.float64) + np.array([0.0, 0.0, 1.0]))
  return specular * np.clip(normals @ half, 0.0, 1.0) ** shininess


# ---------------------------------------------------------------------------------------------
# Drawing.


def render_mesh(ax: Axes, vertices: np.ndarray, faces: np.ndarray,
                face_or_vertex_colors: Optional[np.ndarray] = None, view: View = 'front', *,
                cull_backfaces: bool = True, smooth: bool = True, ambient: float = AMBIENT,
                specular: float = SPECULAR, shininess: float = SHININESS,
                light: np.ndarray = LIGHT_DIR, edge_width: float = 0.6,
                limits: Optional[Tuple[float, float, float, float]] = None,
                margin: float = 0.03) -> PolyCollection:
  """Draws a shaded triangle mesh on `ax` (orthographic camera, painter's algorithm).

  Args:
    ax: a matplotlib Axes; its aspect is made equal and its axis lines hidden.
    vertices: (V, 3) mm. Faces touching a non-finite vertex are skipped.
    faces: (F, 3) vertex indices, counter-clockwise seen from outside (the front side).
    face_or_vertex_colors: (V, 3|4) per-vertex or (F, 3|4) per-face colours (uint8 or float
      in [0, 1]; per-vertex when V == F), or None for light grey. Per-vertex colours are
      averaged over each triangle.
    view: a name in `VIEWS` or (azimuth, elevation) in degrees.
    cull_backfaces: drop triangles facing away from the camera (else they are drawn with
      flipped normals, for meshes of unknown orientation).
    smooth: shade with vertex normals (shading averaged per triangle) instead of flat face
      normals; right for smooth surfaces such as faces, wrong across sharp creases (use
      False for boxes and other hard-edged meshes).
    ambient: brightness factor of unlit surfaces; 1.0 (with specular 0) disables shading.
    specular: strength of a white Blinn-Phong highlight added on top (keeps the shape readable
      on dark colormap ends); 0 for pure Lambert + ambient.
    shininess: Blinn-Phong exponent (larger = smaller highlight).
    light: (3,) unit direction toward the light in camera coordinates (x right, y up, z toward
      the viewer).
    edge_width: outline width in points drawn in each triangle's own colour, which closes the
      hairline seams antialiasing would leave between neighbours; 0 for none.
    limits: (xmin, xmax, ymin, ymax) image-plane extent in mm, or None for the bounding box of
      the projected vertices (plus `margin`).
    margin: fraction of the larger bounding-box side added on every side.
  Returns:
    The PolyCollection added to `ax`.
  """
  vertices = np.asarray(vertices, np.float64).reshape(-1, 3)
  faces = np.asarray(faces, np.int64).reshape(-1, 3)
  n_vertices, n_faces = len(vertices), len(faces)
  rgba = _face_rgba(face_or_vertex_colors, n_vertices, n_faces, faces)

  cam = project(vertices, view)
  tri = cam[faces]  # (F, 3, 3)
  normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # Area-weighted.
  keep = np.isfinite(tri).all(axis=(1, 2)) & (np.abs(normals).sum(axis=1) > 0)
  if cull_backfaces:
    keep &= normals[:, 2] > 0
  facing = np.where(normals[:, 2:] < 0, -1.0, 1.0)  # Flips back faces when not culled.

  if smooth:
    finite = np.where(np.isfinite(normals), normals, 0.0)
    vertex_normals = _vertex_normals(finite, faces, n_vertices)
    corner_normals = vertex_normals[faces] * facing[:, None]  # (F, 3, 3)
    shade = lambert(corner_normals, light, ambient).mean(axis=1)
    gloss = highlight(corner_normals, light, specular, shininess).mean(axis=1)
  else:
    unit = _unit(normals) * facing
    shade = lambert(unit, light, ambient)
    gloss = highlight(unit, light, specular, shininess)
  rgba = rgba.copy()
  rgba[:, :3] = np.clip(rgba[:, :3] * shade[:, None] + gloss[:, None], 0.0, 1.0)

  order = np.argsort(tri[keep][:, :, 2].mean(axis=1), kind='stable')  # Far to near.
  polygons = tri[keep][order][:, :, :2]
  face_rgba = rgba[keep][order]
  collection = PolyCollection(polygons, closed=True, facecolors=face_rgba,
                              edgecolors=face_rgba if edge_width > 0 else 'none',
                              linewidths=edge_width, antialiaseds=True)
  ax.add_collection(collection)

  if limits is None:
    limits = image_limits(cam, margin)
  xmin, xmax, ymin, ymax = _fit_aspect(ax, limits)
  ax.set_xlim(xmin, xmax)
  ax.set_ylim(ymin, ymax)
  ax.set_aspect('equal', adjustable='box')
  ax.set_axis_off()
  return collection


def _fit_aspect(ax: Axes, limits: Tuple[float, float, float, float]
               ) -> Tuple[float, float, float, float]:
  """Widens `limits` about their centre to the axes' pixel aspect, so the mesh is centred
  and the axes box keeps its size (equal aspect then needs no shrinking)."""
  xmin, xmax, ymin, ymax = limits
  box = ax.get_position()
  fig_w, fig_h = ax.figure.get_size_inches()
  box_w, box_h = box.width * fig_w, box.height * fig_h
  if box_w <= 0 or box_h <= 0:
    return limits
  cx, cy = 0.5 * (xmin + xmax), 0.5 * (ymin + ymax)
  half_w, half_h = max(0.5 * (xmax - xmin), 1e-9), max(0.5 * (ymax - ymin), 1e-9)
  if half_w / half_h < box_w / box_h:
    half_w = half_h * box_w / box_h
  else:
    half_h = half_w * box_h / box_w
  return (cx - half_w, cx + half_w, cy - half_h, cy + half_h)


def image_limits(cam: np.ndarray, margin: float = 0.03) -> Tuple[float, float, float, float]:
  """(xmin, xmax, ymin, ymax) of projected points (V, 3) plus `margin` of the larger side."""
  xy = cam[:, :2][np.isfinite(cam[:, :2]).all(axis=1)]
  if not len(xy):
    return (-1.0, 1.0, -1.0, 1.0)
  lo, hi = xy.min(axis=0), xy.max(axis=0)
  pad = margin * max(float((hi - lo).max()), 1e-6)
  return (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)


def shared_limits(vertex_sets: Sequence[np.ndarray], view: View,
                  margin: float = 0.03) -> Tuple[float, float, float, float]:
  """Image-plane limits covering several meshes, for renders at one common scale."""
  cam = np.concatenate([project(v, view) for v in vertex_sets])
  return image_limits(cam, margin)


# ---------------------------------------------------------------------------------------------
# Figures.


def _new_figure(width_px: int, height_px: int) -> Figure:
  """A pyplot-free Agg figure of exactly width_px x height_px pixels at `DPI`."""
  # The tiny excess keeps int() truncation inside the renderer from losing a pixel.
  fig = Figure(figsize=((width_px + 0.01) / DPI, (height_px + 0.01) / DPI), dpi=DPI,
               facecolor=BACKGROUND)
  FigureCanvasAgg(fig)
  return fig


def _save(fig: Figure, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)
  fig.savefig(str(path), dpi=DPI, facecolor=fig.get_facecolor())
  fig.clear()
  return str(path)


def _resolve_values(values: Optional[np.ndarray], cmap: Any, vmin: Optional[float],
                    vmax: Optional[float]):
  """Per-element colours for `render_mesh` plus the colorbar range (None if not scalars).

  Args:
    values: None, (N,) scalars (N = V or F), or (N, 3|4) colours.
  Returns:
    (colours (N, 4) uint8 or None, (vmin, vmax) or None).
  """
  if values is None:
    return None, None
  values = np.asarray(values)
  if values.ndim == 1:
    lo, hi = colors_lib.scalar_range(values, vmin, vmax)
    return colors_lib.scalar_colors(values, cmap, lo, hi), (lo, hi)
  return values, None


def _colorbar(fig: Figure, rect: Sequence[float], cmap: Any, value_range: Tuple[float, float],
              label: Optional[str]) -> None:
  """A horizontal colorbar in figure-fraction `rect` (left, bottom, width, height)."""
  cax = fig.add_axes(rect)
  lo, hi = value_range
  if not hi > lo:  # Constant field: a small symmetric range around the value.
    pad = max(abs(lo) * 0.05, 1e-6)
    lo, hi = lo - pad, hi + pad
  mappable = mpl_cm.ScalarMappable(norm=mpl_colors.Normalize(lo, hi),
                                   cmap=matplotlib.colormaps[cmap] if isinstance(cmap, str)
                                   else cmap)
  bar = fig.colorbar(mappable, cax=cax, orientation='horizontal')
  bar.ax.tick_params(labelsize=8, length=2, pad=1)
  if label:
    bar.set_label(label, fontsize=9, labelpad=1)


def render_views(path: str, vertices: np.ndarray, faces: np.ndarray,
                 values: Optional[np.ndarray] = None, views: Sequence[View] = ('front', 'side'),
                 title: Optional[str] = None, cmap: Any = 'viridis',
                 vmin: Optional[float] = None, vmax: Optional[float] = None,
                 colorbar_label: Optional[str] = None,
                 size_px: Optional[Tuple[int, int]] = None, **render_kwargs) -> str:
  """Writes a PNG with one panel per view of a mesh and, for scalar values, a colorbar.

  Args:
    path: output .png (parent folders are created).
    vertices: (V, 3) mm.
    faces: (F, 3) counter-clockwise from outside.
    values: None (grey), (V,) or (F,) scalars (thickness mm, error mm, skinning weight ...;
      NaN shows grey) or (V|F, 3|4) colours (uint8 or float in [0, 1]).
    views: view names or (azimuth, elevation) pairs, drawn left to right.
    title: figure title.
    cmap, vmin, vmax: colormap and its range for scalar values (None: data min / max).
    colorbar_label: text under the colorbar, e.g. 'thickness (mm)'.
    size_px: (width, height) of the whole image in pixels; default 360 per view x 440.
    **render_kwargs: passed to `render_mesh` (smooth, ambient, cull_backfaces ...).
  Returns:
    `path`.
  """
  views = list(views)
  width, height = size_px or (360 * len(views), 440)
  colors, value_range = _resolve_values(values, cmap, vmin, vmax)
  title_px = 30 if title else 4
  bar_px = 52 if value_range is not None else 4
  fig = _new_figure(width, height)
  bottom, top = bar_px / height, 1.0 - title_px / height
  panel_w = 1.0 / len(views)
  for i, view in enumerate(views):
    ax = fig.add_axes([i * panel_w, bottom, panel_w, top - bottom])
    render_mesh(ax, vertices, faces, colors, view, **render_kwargs)
  if title:
    fig.text(0.5, 1.0 - 0.5 * title_px / height, title, ha='center', va='center', fontsize=12)
  if value_range is not None:
    bar_w = min(0.6, 320.0 / width) if width > 0 else 0.6
    _colorbar(fig, [0.5 - bar_w / 2, 30.0 / height, bar_w, 12.0 / height], cmap, value_range,
              colorbar_label)
  return _save(fig, path)


def render_grid(path: str, panels: Sequence[Dict[str, Any]], ncols: int,
                panel_px: Tuple[int, int] = (320, 380), title: Optional[str] = None,
                share_limits: bool = False, **render_kwargs) -> str:
  """Writes a PNG grid of meshes, for side-by-side comparisons (ground truth vs learned ...).

  Args:
    path: output .png (parent folders are created).
    panels: one dict per panel, filled row by row, with keys
      vertices: (V, 3) mm (required);
      faces: (F, 3) (required);
      values: (V,) / (F,) scalars or (V|F, 3|4) colours, or colors: (V|F, 3|4) (optional);
      title: panel title; cmap (default 'viridis'), vmin, vmax: scalar colour range;
      label: colorbar label; view: view name or (azimuth, elevation) (default 'front').
      A panel with scalar values gets its own colorbar; give panels equal vmin / vmax to make
      their colours comparable.
    ncols: number of columns.
    panel_px: (width, height) of one panel in pixels, title and colorbar included.
    title: figure title above the grid.
    share_limits: draw every panel at one scale and extent (per view) instead of each mesh
      filling its panel.
    **render_kwargs: passed to `render_mesh`.
  Returns:
    `path`.
  """
  panels = list(panels)
  ncols = max(1, min(int(ncols), len(panels))) if panels else 1
  nrows = max(1, -(-len(panels) // ncols))
  pw, ph = panel_px
  title_px = 30 if title else 0
  width, height = ncols * pw, nrows * ph + title_px
  fig = _new_figure(width, height)
  limits = {}
  if share_limits:
    for panel in panels:
      limits.setdefault(_view_key(panel.get('view', 'front')), []).append(panel['vertices'])
    limits = {k: shared_limits(v, k) for k, v in limits.items()}
  for i, panel in enumerate(panels):
    row, col = divmod(i, ncols)
    x0 = col * pw / width
    y_top = 1.0 - (title_px + row * ph) / height  # Top of this cell, figure fraction.
    cmap = panel.get('cmap', 'viridis')
    values = panel.get('values', panel.get('colors'))
    colors, value_range = _resolve_values(values, cmap, panel.get('vmin'), panel.get('vmax'))
    head_px = 24 if panel.get('title') else 4
    bar_px = 56 if value_range is not None else 4
    view = panel.get('view', 'front')
    ax = fig.add_axes([x0, y_top - (ph - bar_px) / height, pw / width,
                       (ph - head_px - bar_px) / height])
    render_mesh(ax, panel['vertices'], panel['faces'], colors, view,
                limits=limits.get(_view_key(view)), **render_kwargs)
    if panel.get('title'):
      fig.text(x0 + 0.5 * pw / width, y_top - 0.5 * head_px / height, panel['title'],
               ha='center', va='center', fontsize=10)
    if value_range is not None:
      bar_w = 0.7 * pw / width
      _colorbar(fig, [x0 + 0.15 * pw / width, y_top - (ph - 34) / height, bar_w, 10 / height],
                cmap, value_range, panel.get('label'))
  if title:
    fig.text(0.5, 1.0 - 0.5 * title_px / height, title, ha='center', va='center', fontsize=12)
  return _save(fig, path)


def _view_key(view: View):
  return view if isinstance(view, str) else tuple(float(a) for a in view)


def render_image(vertices: np.ndarray, faces: np.ndarray,
                 face_or_vertex_colors: Optional[np.ndarray] = None, view: View = 'front',
                 size_px: Tuple[int, int] = (256, 256), **render_kwargs) -> np.ndarray:
  """Renders one view to an in-memory image (for tests, videos or custom figures).

  The mesh fills the whole image (bounding box plus margin, centred, equal aspect) on white.

  Args:
    vertices, faces, face_or_vertex_colors, view, **render_kwargs: as in `render_mesh`.
    size_px: (width, height) in pixels.
  Returns:
    (height, width, 3) uint8 RGB.
  """
  width, height = size_px
  fig = _new_figure(width, height)
  ax = fig.add_axes([0.0, 0.0, 1.0, 1.0])
  render_mesh(ax, vertices, faces, face_or_vertex_colors, view, **render_kwargs)
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
  fig.clear()
  return image
