"""Actors stored as a folder of meshes (DESIGN.md section 2, 'files').

Layout of an actor folder (every mesh shares the neutral's vertex order; rigid head motion
removed):

  neutral.obj|ply        the neutral skin shape; its faces are every shape's faces.
  expressions/*.obj|ply  one expression per file, named by the file stem; sorted by name unless
                         actor.json gives `shape_order`. Other files in expressions/ are ignored.
  skull.obj|ply          the cranium (skull + maxilla) in the neutral pose.
  mandible.obj|ply       the mandible in the neutral pose.
  actor.json             optional, every key optional:
                           units: "mm" (default), "cm" or "m": the unit of every length in the
                             folder (meshes, pivot, ground truth); loading converts to mm.
                           pivot: [x, y, z] jaw pivot in `units`; default: estimated from the
                             mandible (`estimate_pivot`).
                           name: the actor's name; default: the folder's name.
                           trusted, region: a .npy file in the folder (a (V,) bool mask or an
                             array of vertex ids) or a JSON list of vertex ids; default: all.
                           shape_order: the shape names in order; either every expression's name,
                             or the neutral's name followed by every expression's name.
                           jaw_transforms: a JSON file in the folder with the jaw transform
                             the user fitted for each shape (e.g. from tracked teeth), for the
                             learning's optional jaw prior: {"pivot": [x, y, z] (optional;
                             default the actor's pivot), "shapes": {name: {"R": 3x3 rotation,
                             "t": [x, y, z]}}} with lengths in `units`; a mandible point p moves
                             to R (p - pivot) + pivot + t. The neutral may be left out (identity).
  ground_truth.npz       optional dense ground truth (`GroundTruth` fields plus `shape_names`),
                         lengths in `units`.

Meshes are read and written by `aim_jax.mesh_io` (the file's vertex order and count kept exactly;
polygons fan-triangulated on load). Every problem raises `ActorError` with one line
'<file>: <problem>'.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import uuid
from typing import Optional

import numpy as np

from aim_jax import mesh_io
from aim_jax.data import actor_json
from aim_jax.data import symmetry as symmetry_lib
from aim_jax.data.actor import Actor, ActorError, GroundTruth, Mesh, file_error, make_actor

MESH_FORMATS = ('obj', 'ply')
# Ground-truth fields that are lengths (converted with the folder's units).
_GT_LENGTHS = ('bone_point', 'thickness', 'jaw_translation')
_GT_PER_SHAPE = ('jaw_rotation', 'jaw_translation')
_MESH_STEMS = ('neutral', 'skull', 'mandible')
_EXPRESSIONS = 'expressions'
_JSON = actor_json.FILE_NAME
_GROUND_TRUTH = 'ground_truth.npz'
_JAWS = 'jaw_transforms.json'
_SOURCE_IDS = 'source_vertex_ids.npy'


# ---------------------------------------------------------------------------------------------
# Mesh files of the folder.


def _mesh_file(folder: str, stem: str) -> str:
  """The one `stem`.obj|ply in `folder` (extension case-insensitive); ActorError if 0 or 2."""
  found = sorted(name for name in _listdir(folder)
                 if os.path.splitext(name)[0] == stem
                 and os.path.splitext(name)[1].lower() in ('.obj', '.ply')
                 and os.path.isfile(os.path.join(folder, name)))
  if not found:
    raise file_error(folder, f'missing {stem}.obj or {stem}.ply')
  if len(found) > 1:
    raise file_error(folder, f'{" and ".join(found)} both present; keep one')
  return os.path.join(folder, found[0])


def _listdir(folder: str):
  try:
    return os.listdir(folder)
  except OSError as err:
    raise file_error(folder, f'cannot list folder ({err.strerror or err})') from err


# ---------------------------------------------------------------------------------------------
# The jaw pivot.


def estimate_pivot(mandible_vertices: np.ndarray, plane: np.ndarray = (1.0, 0.0, 0.0, 0.0),
                   posterior_fraction: float = 0.1) -> np.ndarray:
  """Estimates the jaw pivot (mid-point of the condyles) from a mandible mesh.

  On each side of the mirror plane, take the most posterior (lowest z) `posterior_fraction` of
  that side's mandible vertices (the rami), and among them the highest (largest y) vertex: the
  top of the condyle. The estimate is the mid-point of the two. It lies on the condyle tops, a
  few mm above the true centres of rotation; give `pivot` in actor.json when it is known.

  Args:
    mandible_vertices: (N, 3) mm, +y up, +z forward.
    plane: (4,) mirror plane (unit normal, offset) separating the two sides.
    posterior_fraction: the fraction of each side's vertices counted as posterior.
  Returns:
    (3,) float64 mm pivot.
  Raises:
    ActorError: when one side of the plane has no mandible vertex.
  """
  vertices = np.asarray(mandible_vertices, np.float64)
  plane = np.asarray(plane, np.float64)
  side = vertices @ plane[:3] - plane[3]
  tops = []
  for name, selected in (('right', side < 0), ('left', side > 0)):
    points = vertices[selected]
    if not len(points):
      raise ActorError(f'mandible: no vertex on the {name} of the mirror plane; cannot estimate '
                       'the jaw pivot (give "pivot" in actor.json)')
    back = points[points[:, 2] <= np.quantile(points[:, 2], posterior_fraction)]
    tops.append(back[np.argmax(back[:, 1])])
  return 0.5 * (tops[0] + tops[1])


# ---------------------------------------------------------------------------------------------
# Loading.


def _expression_files(folder: str):
  """Sorted (name, path) of the expression meshes; ActorError when there is none."""
  directory = os.path.join(folder, _EXPRESSIONS)
  if not os.path.isdir(directory):
    raise file_error(directory, 'missing: need at least one expression mesh (.obj or .ply)')
  found = {}
  for file_name in sorted(_listdir(directory)):
    stem, extension = os.path.splitext(file_name)
    path = os.path.join(directory, file_name)
    if (file_name.startswith('.') or extension.lower() not in ('.obj', '.ply')
        or not os.path.isfile(path)):
      continue
    if stem in found:
      raise file_error(path,
                       f'expression {stem!r} also in {os.path.basename(found[stem])}; keep one')
    found[stem] = path
  if not found:
    raise file_error(directory, 'no expression meshes (.obj or .ply); need at least one')
  return sorted(found.items())


def _read_ground_truth(folder: str, scale: float, shape_names) -> Optional[GroundTruth]:
  """ground_truth.npz converted to mm with rows in `shape_names` order, or None if absent."""
  file = os.path.join(folder, _GROUND_TRUTH)
  if not os.path.exists(file):
    return None
  fields = [f.name for f in dataclasses.fields(GroundTruth)]
  try:
    if not actor_json.file_starts_with(file, b'PK'):
      raise ValueError('not a .npz file')
    with np.load(file, allow_pickle=False) as data:
      arrays = {key: np.asarray(data[key]) for key in data.files}
  except (OSError, ValueError, EOFError, KeyError) as err:
    raise file_error(file, f'unreadable ({type(err).__name__}: {err})') from err
  missing = [f for f in fields if f not in arrays]
  if missing:
    raise file_error(file, f'missing arrays: {", ".join(missing)}')
  for key in _GT_LENGTHS:
    arrays[key] = arrays[key] * scale
  if 'shape_names' in arrays:  # Match the expressions' rows by name; row 0 is the neutral's.
    stored = [str(n) for n in arrays['shape_names']]
    if sorted(stored[1:]) != sorted(shape_names[1:]):
      raise file_error(file, f'expression names {stored[1:]} do not match the actor\'s '
                       f'{list(shape_names[1:])}')
    index = [0] + [stored.index(n) for n in shape_names[1:]]
    for key in _GT_PER_SHAPE:
      arrays[key] = arrays[key][index]
  values = {}
  for key in fields:
    value = arrays[key]
    values[key] = value.astype(np.int32) if key == 'bone_id' else value.astype(np.float32)
  return GroundTruth(**values)


def load_actor(path: str) -> Actor:
  """Loads an actor from a folder (layout in the module docstring), converting lengths to mm.

  Args:
    path: the actor folder.
  Returns:
    A validated Actor: shapes (S, V, 3) float32 mm with the neutral first, faces (F, 3) from the
    neutral file, bones in mm, pivot (3,) mm, masks (V,) bool; source = `path`.
  Raises:
    ActorError: one line '<file>: <problem>' for anything wrong with the folder or its files.
  """
  folder = os.fspath(path)
  if not os.path.exists(folder):
    raise file_error(folder, 'no such actor folder')
  if not os.path.isdir(folder):
    raise file_error(folder, 'not a folder (an actor is a folder of meshes)')
  settings = actor_json.read_settings(folder)
  json_file = os.path.join(folder, _JSON)
  units = settings.get('units', 'mm')
  scale = actor_json.UNITS_TO_MM[units]

  neutral_file = _mesh_file(folder, 'neutral')
  neutral, faces = mesh_io.read_mesh(neutral_file, scale)
  if not len(faces):
    raise file_error(neutral_file, 'no faces (the neutral gives every shape its triangles)')
  num_vertices = neutral.shape[0]
  expressions = {}
  expression_files = dict(_expression_files(folder))
  for name, file in expression_files.items():
    vertices, expression_faces = mesh_io.read_mesh(file, scale)
    if vertices.shape[0] != num_vertices:
      raise file_error(file, f'{vertices.shape[0]} vertices, the neutral has {num_vertices}')
    if len(expression_faces) and len(expression_faces) != len(faces):
      raise file_error(file, f'{len(expression_faces)} triangles, the neutral has {len(faces)}: '
                       'every shape must share the neutral\'s topology')
    expressions[name] = vertices
  neutral_name, order = actor_json.ordered_names(json_file, 'neutral', list(expressions),
                                       settings.get('shape_order'))
  if neutral_name in expressions:
    raise file_error(expression_files[neutral_name], f'an expression named like the neutral '
                     f'({neutral_name!r}); rename it or name the neutral in shape_order')
  shapes = np.stack([neutral] + [expressions[name] for name in order])
  shape_names = [neutral_name] + order

  bones, bone_files = {}, {}
  for stem in ('skull', 'mandible'):
    bone_files[stem] = file = _mesh_file(folder, stem)
    vertices, bone_faces = mesh_io.read_mesh(file, scale)
    if not len(bone_faces):
      raise file_error(file, 'no faces; a bone must be a triangle mesh')
    bones[stem] = Mesh(vertices, bone_faces)

  if 'pivot' in settings:
    pivot = np.asarray(settings['pivot'], np.float64) * scale
  else:
    plane = symmetry_lib.mirror_plane(neutral)
    try:
      pivot = estimate_pivot(bones['mandible'].vertices, plane)
    except ActorError as err:
      raise file_error(bone_files['mandible'], str(err).split(': ', 1)[1]) from err

  masks = {}
  for what in ('trusted', 'region'):
    if what in settings:
      masks[what] = actor_json.read_mask(folder, what, settings[what], num_vertices)
  ground_truth = _read_ground_truth(folder, scale, shape_names)
  shape_jaws = None
  if 'jaw_transforms' in settings:
    shape_jaws = actor_json.read_jaw_transforms(os.path.join(folder, settings['jaw_transforms']),
                                     shape_names, pivot, scale)
  source_ids = None
  if 'source_vertex_ids' in settings:
    source_ids = actor_json.read_vertex_ids(folder, settings['source_vertex_ids'])
  name = settings.get('name') or os.path.basename(os.path.normpath(os.path.abspath(folder)))
  return make_actor(
      name=name, shapes=shapes, shape_names=shape_names, faces=faces, skull=bones['skull'],
      mandible=bones['mandible'], pivot=pivot, trusted=masks.get('trusted'),
      region=masks.get('region'), ground_truth=ground_truth, source=folder,
      shape_jaws=shape_jaws, source_vertex_ids=source_ids)


# ---------------------------------------------------------------------------------------------
# Saving.


def _check_file_names(folder: str, names):
  """ActorError unless the shape names are distinct and the expressions' are plain file names."""
  if len(set(names)) != len(names):
    repeated = sorted(set(n for n in names if names.count(n) > 1))
    raise file_error(folder, f'shape names repeat: {", ".join(repeated)}')
  seen = {}
  for name in names[1:]:
    if (not name or name != name.strip() or name.startswith('.') or '/' in name or '\\' in name
        or '\0' in name or ':' in name):
      raise file_error(folder, f'shape name {name!r} cannot be a file name in {_EXPRESSIONS}/')
    if name.lower() in seen:
      raise file_error(folder,
                       f'shape names {seen[name.lower()]!r} and {name!r} would share a file')
    seen[name.lower()] = name


def _owned_entries(folder: str):
  """The entries of an existing actor folder that save_actor replaces."""
  owned = []
  for entry in _listdir(folder):
    stem, extension = os.path.splitext(entry)
    if ((stem in _MESH_STEMS and extension.lower() in ('.obj', '.ply'))
        or entry in (_JSON, _GROUND_TRUTH, _JAWS, 'trusted.npy', 'region.npy', _SOURCE_IDS,
                     _EXPRESSIONS)):
      owned.append(entry)
  return owned


def _write_folder(actor: Actor, folder: str, units: str, mesh_format: str):
  """Writes the actor's files into the (empty) `folder`."""
  scale = actor_json.UNITS_TO_MM[units]
  extension = '.' + mesh_format
  mesh_io.write_mesh(os.path.join(folder, 'neutral' + extension), actor.shapes[0] / scale,
                     actor.faces)
  os.mkdir(os.path.join(folder, _EXPRESSIONS))
  for name, shape in zip(actor.shape_names[1:], actor.shapes[1:]):
    mesh_io.write_mesh(os.path.join(folder, _EXPRESSIONS, name + extension), shape / scale,
                       actor.faces)
  for stem, bone in (('skull', actor.skull), ('mandible', actor.mandible)):
    mesh_io.write_mesh(os.path.join(folder, stem + extension), bone.vertices / scale, bone.faces)
  settings = {
      'name': actor.name,
      'units': units,
      'pivot': [float(p) / scale for p in np.asarray(actor.pivot, np.float64)],
      'shape_order': list(actor.shape_names),
  }
  for what in ('trusted', 'region'):
    mask = np.asarray(getattr(actor, what), bool)
    if not mask.all():
      np.save(os.path.join(folder, what + '.npy'), mask)
      settings[what] = what + '.npy'
  if actor.source_vertex_ids is not None:
    np.save(os.path.join(folder, _SOURCE_IDS), np.asarray(actor.source_vertex_ids, np.int64))
    settings['source_vertex_ids'] = _SOURCE_IDS
  if actor.shape_jaws is not None:
    rotation, translation = (np.asarray(a, np.float64) for a in actor.shape_jaws)
    with open(os.path.join(folder, _JAWS), 'w', encoding='utf-8') as f:
      json.dump({'pivot': settings['pivot'],
                 'shapes': {name: {'R': r.tolist(), 't': (t / scale).tolist()}
                            for name, r, t in zip(actor.shape_names, rotation, translation)}},
                f, indent=1)
    settings['jaw_transforms'] = _JAWS
  if actor.ground_truth is not None:
    arrays = {f.name: np.asarray(getattr(actor.ground_truth, f.name))
              for f in dataclasses.fields(GroundTruth)}
    for key in _GT_LENGTHS:
      arrays[key] = arrays[key].astype(np.float64) / scale
    np.savez(os.path.join(folder, _GROUND_TRUTH), shape_names=np.asarray(actor.shape_names),
             **arrays)
  with open(os.path.join(folder, _JSON), 'w', encoding='utf-8') as f:
    json.dump(settings, f, indent=2)
    f.write('\n')


def save_actor(actor: Actor, path: str, units: str = 'mm', mesh_format: str = 'obj') -> str:
  """Saves an actor as a folder that `load_actor` reads back.

  Writes neutral, expressions/<name>, skull and mandible meshes (lengths divided into `units`),
  actor.json (units, pivot, name, shape_order, mask file names), trusted.npy / region.npy when not
  all True, and ground_truth.npz when the actor has ground truth. Everything is first written to
  a temporary sibling folder; only then are the actor files of an existing folder (the meshes
  above, the whole expressions/ folder, actor.json, the masks, ground_truth.npz) replaced, so a
  failure while writing leaves the existing folder as it was. Other files there are kept.

  Args:
    actor: the actor to save.
    path: destination folder (created if needed).
    units: 'mm', 'cm' or 'm', the unit the files are written in.
    mesh_format: 'obj' or 'ply'.
  Returns:
    `path`.
  Raises:
    ActorError: bad arguments or names, or the writing failed ('<path>: <problem>').
  """
  folder = os.fspath(path)
  if units not in actor_json.UNITS_TO_MM:
    raise file_error(folder, f'unknown units {units!r}; expected one of '
                     f'{", ".join(actor_json.UNITS_TO_MM)}')
  mesh_format = mesh_format.lower().lstrip('.')
  if mesh_format not in MESH_FORMATS:
    raise file_error(folder, f'unknown mesh format {mesh_format!r}; expected obj or ply')
  _check_file_names(folder, list(actor.shape_names))
  if os.path.exists(folder) and not os.path.isdir(folder):
    raise file_error(folder, 'exists and is not a folder')
  absolute = os.path.abspath(folder)
  parent, base = os.path.split(absolute.rstrip(os.sep))
  try:
    os.makedirs(parent, exist_ok=True)
    # Not tempfile.mkdtemp: its folder is private (0700) and this one becomes the actor folder.
    staging = os.path.join(parent, f'.{base}.saving-{uuid.uuid4().hex[:12]}')
    os.mkdir(staging)
  except OSError as err:
    raise file_error(folder, f'cannot create a folder next to it ({err})') from err
  try:
    _write_folder(actor, staging, units, mesh_format)
    if not os.path.exists(absolute):
      os.rename(staging, absolute)
      return path
    _replace_entries(staging, absolute)
  except ActorError:
    raise
  except Exception as err:  # pylint: disable=broad-except
    raise file_error(folder, f'saving failed, the folder was left as it was ({type(err).__name__}: '
                     f'{err})') from err
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return path


def _replace_entries(staging: str, folder: str):
  """Moves `staging`'s entries into `folder`, replacing its actor files; undoes on failure."""
  backup = tempfile.mkdtemp(prefix=f'.{os.path.basename(folder)}.old-',
                            dir=os.path.dirname(folder))
  moved_out, moved_in = [], []
  try:
    for entry in _owned_entries(folder):
      os.rename(os.path.join(folder, entry), os.path.join(backup, entry))
      moved_out.append(entry)
    for entry in sorted(os.listdir(staging)):
      os.rename(os.path.join(staging, entry), os.path.join(folder, entry))
      moved_in.append(entry)
  except BaseException as err:
    try:  # Put the old files back.
      for entry in moved_in:
        target = os.path.join(folder, entry)
        if os.path.isdir(target):
          shutil.rmtree(target)
        else:
          os.remove(target)
      for entry in moved_out:
        os.rename(os.path.join(backup, entry), os.path.join(folder, entry))
    except OSError as restore_err:
      raise file_error(folder, f'saving failed mid-way ({err}) and putting the old files back '
                       f'failed ({restore_err}); the old files are in {backup}') from err
    shutil.rmtree(backup, ignore_errors=True)
    raise
  shutil.rmtree(backup, ignore_errors=True)
