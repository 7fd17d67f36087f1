"""Coloured triangle meshes to and from PLY (binary) / OBJ files, topology untouched.

Everything goes through trimesh with `process=False` (and `maintain_order=True` on load), so
vertices are never merged, reordered or dropped: duplicated (coincident) vertices, e.g. the
seams of a face template, and unreferenced vertices survive a round trip, and vertex i of the
file is vertex i of the array.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np
import trimesh

from aim_jax.viz import colors as colors_lib

_FORMATS = {'.ply': 'ply', '.obj': 'obj'}


def _file_type(path: str) -> str:
  ext = os.path.splitext(str(path))[1].lower()
  if ext not in _FORMATS:
    raise ValueError(f'unsupported mesh extension {ext!r} (use .ply or .obj): {path}')
  return _FORMATS[ext]


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
  file_type = _file_type(path)
  vertices = np.asarray(vertices, np.float64).reshape(-1, 3)
  faces = np.asarray(faces, np.int64).reshape(-1, 3)
  if colors is not None:
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


def read_mesh(path: str) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
  """Reads a PLY / OBJ triangle mesh exactly as stored (no merging or reordering).

  Args:
    path: a .ply or .obj file.
  Returns:
    vertices: (V, 3) float64 mm.
    faces: (F, 3) int64.
    colors: (V, 4) uint8 RGBA per vertex, or None when the file has no vertex colours
      (alpha is 255 for OBJ files).
  """
  file_type = _file_type(path)
  mesh = trimesh.load(str(path), file_type=file_type, process=False, maintain_order=True,
                      force='mesh')
  vertices = np.asarray(mesh.vertices, np.float64)
  faces = np.asarray(mesh.faces, np.int64).reshape(-1, 3)
  colors = None
  if getattr(mesh.visual, 'kind', None) == 'vertex':
    colors = np.asarray(mesh.visual.vertex_colors, np.uint8).copy()
  return vertices, faces, colors
