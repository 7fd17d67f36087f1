"""actor.json of an actor folder and the files it names: settings, masks, shape order, jaws.

The keys, their meaning and the jaw_transforms.json format are in `aim_jax.data.folder`'s module
docstring (the folder layout). Everything here checks what it reads and raises `ActorError` with
one line '<file>: <problem>'. Lengths are converted with `UNITS_TO_MM` (the folder's `units`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from aim_jax.data.actor import file_error

FILE_NAME = 'actor.json'
UNITS_TO_MM = {'mm': 1.0, 'cm': 10.0, 'm': 1000.0}
JSON_KEYS = ('jaw_transforms', 'name', 'pivot', 'region', 'shape_order', 'source_vertex_ids',
             'trusted', 'units')


def read_settings(folder: str) -> dict:
  """actor.json's settings, checked; {} when there is none."""
  file = os.path.join(folder, FILE_NAME)
  if not os.path.exists(file):
    return {}
  try:
    with open(file, encoding='utf-8') as f:
      settings = json.load(f)
  except (OSError, UnicodeDecodeError) as err:
    raise file_error(file, f'unreadable ({err})') from err
  except json.JSONDecodeError as err:
    raise file_error(file, f'not valid JSON ({err})') from err
  if not isinstance(settings, dict):
    raise file_error(file, f'must hold a JSON object {{...}}, got {type(settings).__name__}')
  unknown = sorted(set(settings) - set(JSON_KEYS))
  if unknown:
    raise file_error(file, f'unknown key(s) {", ".join(map(repr, unknown))}; allowed keys: '
                     f'{", ".join(JSON_KEYS)}')
  units = settings.get('units', 'mm')
  if units not in UNITS_TO_MM:
    raise file_error(file, f'unknown units {units!r}; expected one of {", ".join(UNITS_TO_MM)}')
  if 'name' in settings and not (isinstance(settings['name'], str) and settings['name']):
    raise file_error(file, f'name must be a non-empty string, got {settings["name"]!r}')
  if 'pivot' in settings:
    pivot = settings['pivot']
    ok = (isinstance(pivot, list) and len(pivot) == 3
          and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in pivot))
    if not ok or not np.isfinite(np.asarray(pivot, np.float64)).all():
      raise file_error(file, f'pivot must be 3 finite numbers [x, y, z] in {units}, got {pivot!r}')
  order = settings.get('shape_order')
  if order is not None and not (isinstance(order, list) and order
                                and all(isinstance(n, str) for n in order)):
    raise file_error(file, f'shape_order must be a non-empty list of shape names, got {order!r}')
  return settings


def file_starts_with(file: str, magic: bytes) -> bool:
  """Whether the file's first bytes are `magic` (a cheap format check before numpy reads it)."""
  with open(file, 'rb') as f:
    return f.read(len(magic)) == magic


def read_mask(folder: str, what: str, value, num_vertices: int) -> np.ndarray:
  """A (V,) bool mask from actor.json's `what` entry: a .npy file name or a list of vertex ids."""
  json_file = os.path.join(folder, FILE_NAME)
  if isinstance(value, str):
    array, where = _read_npy(folder, what, value)
  elif isinstance(value, list):
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
      raise file_error(json_file, f'{what} must be a .npy file name or a list of vertex ids '
                       '(integers)')
    array = np.asarray(value, np.int64).reshape(-1)
    where = f'{json_file} ({what})'
  else:
    raise file_error(json_file, f'{what} must be a .npy file name or a list of vertex ids, got '
                     f'{type(value).__name__}')
  if array.dtype == bool:
    if array.shape != (num_vertices,):
      raise file_error(where, f'{what} mask has shape {array.shape}; the neutral has '
                       f'{num_vertices} vertices')
    return array
  if not np.issubdtype(array.dtype, np.integer) or array.ndim != 1:
    raise file_error(where, f'{what} must be a (V,) bool mask or a list of vertex ids, got '
                     f'{array.dtype} of shape {array.shape}')
  if array.size and (array.min() < 0 or array.max() >= num_vertices):
    raise file_error(where, f'{what} lists vertex ids outside 0..{num_vertices - 1}')
  mask = np.zeros(num_vertices, bool)
  mask[array] = True
  return mask


def _read_npy(folder: str, what: str, name: str):
  """(array, file) of a .npy file actor.json names for `what`; one-line ActorError otherwise."""
  file = os.path.join(folder, name)
  if not os.path.isfile(file):
    raise file_error(os.path.join(folder, FILE_NAME),
                     f'{what}: no such file {name!r} in the actor folder')
  try:
    if not file_starts_with(file, b'\x93NUMPY'):
      raise ValueError('not a .npy file')
    return np.load(file, allow_pickle=False), file
  except (OSError, ValueError, EOFError) as err:
    raise file_error(file, f'unreadable .npy ({err})') from err


def read_vertex_ids(folder: str, value) -> np.ndarray:
  """The array of actor.json's `source_vertex_ids` (a .npy file name): each actor vertex's index
  in the mesh the actor was cut from (checked with the rest of the actor, `validate_actor`)."""
  if not isinstance(value, str):
    raise file_error(os.path.join(folder, FILE_NAME),
                     'source_vertex_ids must be a .npy file name')
  return _read_npy(folder, 'source_vertex_ids', value)[0]


def ordered_names(json_file: str, neutral_name: str, expression_names, order):
  """The neutral's name and the expression names in the order actor.json's shape_order gives."""
  if order is None:
    return neutral_name, list(expression_names)
  if order and (len(order) == len(expression_names) + 1
                or (len(order) > len(expression_names) and order[0] not in expression_names)):
    # The first name is the neutral's (as save_actor writes it); with an expression file gone
    # the counts differ, but the neutral still leads.
    neutral_name, order = order[0], order[1:]
  if len(set(order)) != len(order):
    raise file_error(json_file, 'shape_order repeats a name')
  missing = sorted(set(order) - set(expression_names))
  extra = sorted(set(expression_names) - set(order))
  if missing or extra:
    problems = []
    if missing:
      problems.append(f'names without a file in expressions/: {", ".join(missing)}')
    if extra:
      problems.append(f'expressions missing from it: {", ".join(extra)}')
    raise file_error(json_file,
                     f'shape_order must list every expression once ({"; ".join(problems)})')
  if neutral_name in order:
    raise file_error(json_file, f'shape_order names the neutral {neutral_name!r} twice')
  return neutral_name, list(order)


def read_jaw_transforms(file: str, shape_names, pivot: np.ndarray, scale: float = 1.0):
  """Per-shape jaw transforms from a JSON file (format: `folder`'s docstring), moved to `pivot`.

  Args:
    shape_names: the actor's S shape names; every expression must have an entry.
    pivot: (3,) mm, the actor's pivot; scale: mm per unit of the file's lengths.
  Returns:
    (rotation (S, 3, 3), translation (S, 3) mm) about `pivot`.
  Raises:
    ActorError: '<file>: <problem>'.
  """
  try:
    with open(file, encoding='utf-8') as f:
      data = json.load(f)
  except FileNotFoundError:
    raise file_error(file, 'missing (named by actor.json\'s jaw_transforms)') from None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
    raise file_error(file, f'unreadable ({type(err).__name__}: {err})') from None
  entries = data.get('shapes') if isinstance(data, dict) else None
  if not isinstance(entries, dict):
    raise file_error(file, 'must hold {"shapes": {name: {"R": 3x3, "t": [x, y, z]}}}')
  pivot = np.asarray(pivot, np.float64)
  source_pivot = np.asarray(data.get('pivot', pivot / scale), np.float64) * scale
  if source_pivot.shape != (3,):
    raise file_error(file, f'pivot must be [x, y, z], got {data.get("pivot")!r}')
  rotations, translations = [], []
  for i, name in enumerate(shape_names):
    entry = entries.get(name)
    if entry is None:
      if i == 0:
        rotations.append(np.eye(3))
        translations.append(np.zeros(3))
        continue
      raise file_error(file, f'no jaw transform for shape {name!r}')
    try:
      rotation = np.asarray(entry['R'], np.float64)
      translation = np.asarray(entry['t'], np.float64) * scale
    except (KeyError, TypeError, ValueError):
      raise file_error(file, f'shape {name!r}: expected {{"R": 3x3, "t": [x, y, z]}}') from None
    if rotation.shape != (3, 3) or translation.shape != (3,):
      raise file_error(file, f'shape {name!r}: R must be 3x3 and t 3 numbers, got shapes '
                       f'{rotation.shape} and {translation.shape}')
    if (not np.isfinite(rotation).all() or not np.isfinite(translation).all()
        or np.abs(rotation @ rotation.T - np.eye(3)).max() > 1e-3
        or np.linalg.det(rotation) < 0):
      raise file_error(file, f'shape {name!r}: R is not a finite rotation matrix')
    # The same motion about the actor's pivot: t' = t + (R - I)(pivot - source_pivot).
    rotations.append(rotation)
    translations.append(translation + (rotation - np.eye(3)) @ (pivot - source_pivot))
  return np.stack(rotations), np.stack(translations)
