"""Triangle meshes to and from OBJ / PLY files, the file's vertex order and count untouched.

Two pairs of functions, one per use:

- `read_mesh` / `write_mesh`: plain meshes (actor folders, frame sequences, template bones). OBJ
  files are read by a small reader here that keeps the file's vertex order and count exactly
  (trimesh's OBJ loader splits meshes by material or group, drops unreferenced vertices and
  duplicates vertices at texture seams, which breaks the shared vertex order of registered
  shapes); PLY files are read by trimesh with process=False. Polygons are fan-triangulated.
  Every problem raises `MeshFileError` (an `ActorError`) with one line '<file>: <problem>'.
  OBJ is written as text with 9 significant digits, PLY as binary little-endian by trimesh
  (float32 positions): float32 values round-trip exactly in both.
- `read_colored_mesh` / `write_colored_mesh`: meshes for inspection with optional per-vertex
  colours, through trimesh with `process=False` (and `maintain_order=True` on load), so
  vertices are never merged, reordered or dropped: duplicated (coincident) vertices, e.g. the
  seams of a face template, and unreferenced vertices survive a round trip.

Coordinates are written as given and read as stored (times `scale`); no unit conversion here.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from aim_jax.data.actor import ActorError


class MeshFileError(ActorError):
  """A mesh file that cannot be read. The message is one line: '<file>: <problem>'."""


def _error(file: str, problem: str) -> MeshFileError:
  """A MeshFileError '<file>: <problem>' on one line."""
  return MeshFileError(f'{file}: {" ".join(str(problem).split())}')


# ---------------------------------------------------------------------------------------------
# Plain meshes.


_FORMATS = {'.obj': 'obj', '.ply': 'ply'}


def _file_type(path: str) -> str:
  """'obj' or 'ply' from the file's extension; ValueError for any other."""
  ext = os.path.splitext(str(path))[1].lower()
  if ext not in _FORMATS:
    raise ValueError(f'unsupported mesh extension {ext!r} (use .ply or .obj): {path}')
  return _FORMATS[ext]


def _read_obj(file: str):
  """Vertices (N, 3) float64 and triangles (F, 3) int64 of an OBJ file, in file vertex order.

  Reads `v` and `f` records only (texture coordinates, normals, groups and materials are
  ignored); face corners may be `i`, `i/t`, `i//n` or `i/t/n`, negative indices count back from
  the last vertex read; polygons are fan-triangulated.
  """
  with open(file, 'rb') as f:
    data = f.read()
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError:
    text = data.decode('latin-1')
  if '\0' in text:
    raise _error(file, 'unreadable mesh: binary data in an OBJ (text) file')
  text = text.replace('\\\r\n', ' ').replace('\\\n', ' ')
  vertices, faces = [], []
  for line_number, line in enumerate(text.splitlines(), 1):
    parts = line.split()
    if not parts:
      continue
    if parts[0] == 'v':
      try:
        if len(parts) < 4:
          raise ValueError('fewer than 3 coordinates')
        vertices.append((float(parts[1]), float(parts[2]), float(parts[3])))
      except ValueError as err:
        raise _error(file, f'line {line_number}: bad vertex {line.strip()[:60]!r} ({err})'
                     ) from err
    elif parts[0] == 'f':
      try:
        corners = [int(token.split('/', 1)[0]) for token in parts[1:]]
        if len(corners) < 3:
          raise ValueError('fewer than 3 corners')
        if 0 in corners:
          raise ValueError('OBJ indices start at 1')
      except ValueError as err:
        raise _error(file, f'line {line_number}: bad face {line.strip()[:60]!r} ({err})'
                     ) from err
      count = len(vertices)
      corners = [c - 1 if c > 0 else count + c for c in corners]
      faces.extend((corners[0], corners[i], corners[i + 1]) for i in range(1, len(corners) - 1))
  if not vertices:
    raise _error(file, 'unreadable mesh: no vertex (v) records; not an OBJ file?')
  vertices = np.asarray(vertices, np.float64)
  faces = np.asarray(faces, np.int64).reshape(-1, 3)
  return vertices, faces


def _read_ply(file: str):
  """Vertices (N, 3) float64 and triangles (F, 3) int64 of a PLY file, read by trimesh."""
  import trimesh  # Local: importing trimesh costs ~0.3 s.
  try:
    loaded = trimesh.load(file, file_type='ply', process=False)
  except Exception as err:  # pylint: disable=broad-except
    raise _error(file, f'unreadable mesh ({type(err).__name__}: {err})') from err
  vertices = np.asarray(getattr(loaded, 'vertices', np.zeros((0, 3))), np.float64)
  faces = getattr(loaded, 'faces', None)
  faces = np.zeros((0, 3), np.int64) if faces is None else np.asarray(faces, np.int64)
  if vertices.ndim != 2 or vertices.shape[0] == 0 or vertices.shape[1] != 3:
    raise _error(file, 'unreadable mesh: no vertices')
  return vertices, faces.reshape(-1, 3)


def read_mesh(file: str, scale: float = 1.0):
  """Reads an OBJ or PLY mesh file, keeping the file's vertex order.

  Args:
    file: path to a .obj or .ply file.
    scale: multiplies the coordinates (mm per file unit).
  Returns:
    vertices (N, 3) float64 (file units times `scale`) and triangles (F, 3) int64 (F may be 0).
  Raises:
    MeshFileError: '<file>: <problem>' for a missing, unreadable or corrupt file, faces indexing
      missing vertices, or non-finite coordinates.
  """
  extension = os.path.splitext(file)[1].lower()
  if extension not in ('.obj', '.ply'):
    raise _error(file, f'unknown mesh format {extension!r}; expected .obj or .ply')
  try:
    if extension == '.obj':
      vertices, faces = _read_obj(file)
    else:
      vertices, faces = _read_ply(file)
  except ActorError:
    raise
  except (OSError, ValueError, MemoryError) as err:
    raise _error(file, f'unreadable mesh ({type(err).__name__}: {err})') from err
  if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
    bad = faces.max() if faces.max() >= vertices.shape[0] else faces.min()
    raise _error(file, f'a face uses vertex {int(bad)} (0-based) but the file has '
                 f'{vertices.shape[0]} vertices')
  bad = ~np.isfinite(vertices)
  if bad.any():
    rows = np.flatnonzero(bad.any(axis=1))
    raise _error(file, f'NaN/inf coordinates in {rows.size} vertex(es), first vertex '
                 f'{int(rows[0])} (0-based)')
  return vertices * scale, faces


def _write_obj(file: str, vertices: np.ndarray, faces: np.ndarray):
  """Writes an OBJ with 9 significant digits (float32 values round-trip exactly)."""
  with open(file, 'w') as f:
    f.write('# aim_jax actor mesh\n')
    np.savetxt(f, np.asarray(vertices, np.float64), fmt='v %.9g %.9g %.9g')
    np.savetxt(f, np.asarray(faces, np.int64) + 1, fmt='f %d %d %d')


def _write_ply(file: str, vertices: np.ndarray, faces: np.ndarray):
  """Writes a binary PLY with trimesh (its writer stores float32 positions)."""
  import trimesh  # Local: importing trimesh costs ~0.3 s.
  mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                         process=False, validate=False)
  with open(file, 'wb') as f:
    f.write(mesh.export(file_type='ply', encoding='binary'))


def write_mesh(file: str, vertices: np.ndarray, faces: np.ndarray):
  """Writes a triangle mesh as OBJ or PLY, chosen by the file's extension.

  Args:
    file: destination path ending in .obj or .ply.
    vertices: (N, 3) coordinates, written as given (no unit conversion here).
    faces: (F, 3) int triangles.
  """
  if file.lower().endswith('.ply'):
    _write_ply(file, vertices, faces)
  else:
    _write_obj(file, vertices, faces)


# ---------------------------------------------------------------------------------------------
# Meshes with vertex colours.


def write_colored_mesh(path: str, vertices: np.ndarray, faces: np.ndarray,
                       colors: Optional[np.ndarray] = None) -> str:
  """Writes a triangle mesh with optional per-vertex colours; the format follows the extension.

  `.ply` is binary little-endian PLY: float32 positions (trimesh's PLY writer; ~1e-5 mm at
  face scale), exact int faces and uint8 RGBA;
  `.obj` is text OBJ with `v x y z r g b` colour lines (8 decimals; alpha is not stored).
  Parent folders are created.

  Args:
    path: output file, ending in .ply or .obj.
    vertices: (V, 3) positions in mm.
    faces: (F, 3) integer vertex indices, counter-clockwise seen from outside.
    colors: (V, 4) uint8 RGBA (or (V, 3) / float in [0, 1]), or None for no colours.
  Returns:
    `path`.
  """
  import trimesh  # Local: importing trimesh costs ~0.3 s.
  file_type = _file_type(path)
  vertices = np.asarray(vertices, np.float64).reshape(-1, 3)
  faces = np.asarray(faces, np.int64).reshape(-1, 3)
  if colors is not None:
    from aim_jax.viz import colors as colors_lib  # Local: it imports matplotlib.
    colors = colors_lib.as_rgba_uint8(colors)
    if len(colors) != len(vertices):
      raise ValueError(f'{len(colors)} colours for {len(vertices)} vertices')
  mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=colors, process=False,
                         validate=False)
  parent = os.path.dirname(os.path.abspath(str(path)))
  os.makedirs(parent, exist_ok=True)
  if file_type == 'ply':
    mesh.export(str(path), file_type='ply', encoding='binary')
  else:
    mesh.export(str(path), file_type='obj', include_color=colors is not None,
                include_normals=False, include_texture=False)
  return str(path)


def read_colored_mesh(path: str) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
  """Reads a PLY / OBJ triangle mesh exactly as stored (no merging or reordering).

  Args:
    path: a .ply or .obj file.
  Returns:
    vertices: (V, 3) float64 mm.
    faces: (F, 3) int64.
    colors: (V, 4) uint8 RGBA per vertex, or None when the file has no vertex colours
      (alpha is 255 for OBJ files).
  """
  import trimesh  # Local: importing trimesh costs ~0.3 s.
  file_type = _file_type(path)
  mesh = trimesh.load(str(path), file_type=file_type, process=False, maintain_order=True,
                      force='mesh')
  vertices = np.asarray(mesh.vertices, np.float64)
  faces = np.asarray(mesh.faces, np.int64).reshape(-1, 3)
  colors = None
  if getattr(mesh.visual, 'kind', None) == 'vertex':
    colors = np.asarray(mesh.visual.vertex_colors, np.uint8).copy()
  return vertices, faces, colors
