"""Reading fitting targets from files (the formats `experiments/fit_sequence.py` accepts).

- A folder of OBJ/PLY frames in the actor's topology (dense 3D), fitted in natural name order
  (frame_2 before frame_10).
- An `.npz` holding one or more of (lengths in `units`, a string entry, default 'mm'):
  * dense 3D:   `frames` (F, V, 3);
  * markers:    `markers` (F, M, 3) and either `marker_vertices` (M,) or `marker_faces` (M,) with
                `marker_barycentric` (M, 3); NaN marks a marker missing in a frame;
  * landmarks:  `landmarks` (F, L, 2) px and `landmark_vertices` (L,) or `landmark_faces` (L,)
                with `landmark_barycentric` (L, 3); the camera as `intrinsics` (3, 3) px,
                `camera_rotation` (3, 3) world->camera and `camera_translation` (3,); optional
                `landmark_visible` (F, L); NaN marks a landmark missing in a frame;
  * ground truth (optional): `gt_frames` (F, V, 3), `gt_jaw_rotation` (F, 3, 3),
                `gt_jaw_translation` (F, 3).
  Kinds present together are fitted jointly.
A separate ground truth can be given as a folder of meshes or an npz with `frames`.
Every problem raises `TargetError` with one line naming the file.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional, Tuple

import numpy as np

from aim_jax import mesh_io
from aim_jax.data import actor_json
from aim_jax.data.actor import ActorError
from aim_jax.fitting import camera as camera_lib
from aim_jax.fitting import targets as targets_lib


class TargetError(ValueError):
  """A problem with fitting targets; the message names the file."""


def _natural_key(name: str):
  return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', name)]


def to_actor_topology(frames: np.ndarray, num_vertices: int,
                      source_vertex_ids: Optional[np.ndarray], where: str) -> np.ndarray:
  """Frames (F, V', 3) in the actor's topology: as they are when V' is the actor's vertex count,
  cropped to the actor's vertices when they are in the topology of the larger mesh the actor was
  cut from (`Actor.source_vertex_ids`); TargetError otherwise."""
  if frames.ndim != 3 or frames.shape[-1] != 3:
    raise TargetError(f'{where}: frames must have shape (F, V, 3), got {frames.shape}')
  count = frames.shape[1]
  if count == num_vertices:
    return frames
  if source_vertex_ids is not None and count > int(np.max(source_vertex_ids)):
    return frames[:, np.asarray(source_vertex_ids)]
  source = ('' if source_vertex_ids is None else
            f' or the {int(np.max(source_vertex_ids)) + 1}+ of the mesh it was cut from')
  raise TargetError(f'{where}: {count} vertices, but the actor has {num_vertices}{source} '
                    '(targets must be in the actor\'s topology)')


def read_mesh_frames(path: str, num_vertices: int, scale: float = 1.0,
                     source_vertex_ids: Optional[np.ndarray] = None) -> np.ndarray:
  """(F, V, 3) mm from a folder of .obj/.ply files, checked against the actor's vertex count
  (frames of the mesh the actor was cut from are cropped, see `to_actor_topology`)."""
  if not os.path.isdir(path):
    raise TargetError(f'{path}: no such folder')
  files = sorted((f for f in os.listdir(path) if f.lower().endswith(('.obj', '.ply'))),
                 key=_natural_key)
  if not files:
    raise TargetError(f'{path}: no .obj or .ply frames in the folder')
  frames = []
  for name in files:
    file = os.path.join(path, name)
    try:
      vertices, _ = mesh_io.read_mesh(file, scale)
    except ActorError as err:
      raise TargetError(str(err)) from None
    frames.append(to_actor_topology(vertices[None], num_vertices, source_vertex_ids, file)[0])
  return np.stack(frames).astype(np.float32)


def _surface_points(data, prefix: str, file: str, triangles: np.ndarray,
                    num_vertices: int) -> targets_lib.SurfacePoints:
  if f'{prefix}_vertices' in data:
    ids = np.asarray(data[f'{prefix}_vertices'])
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
      raise TargetError(f'{file}: {prefix}_vertices must be a 1-D integer array')
    if ids.size and (ids.min() < 0 or ids.max() >= num_vertices):
      raise TargetError(f'{file}: {prefix}_vertices index outside the actor\'s {num_vertices} '
                        'vertices')
    return targets_lib.at_vertices(ids)
  if f'{prefix}_faces' in data and f'{prefix}_barycentric' in data:
    faces = np.asarray(data[f'{prefix}_faces'])
    bary = np.asarray(data[f'{prefix}_barycentric'], np.float64)
    if faces.ndim != 1 or bary.shape != (faces.shape[0], 3):
      raise TargetError(f'{file}: {prefix}_faces (M,) and {prefix}_barycentric (M, 3) '
                        f'disagree: {faces.shape} vs {bary.shape}')
    if faces.size and (faces.min() < 0 or faces.max() >= triangles.shape[0]):
      raise TargetError(f'{file}: {prefix}_faces index outside the actor\'s '
                        f'{triangles.shape[0]} triangles')
    if not np.all(np.isfinite(bary)) or np.any(np.abs(bary.sum(axis=1)) < 1e-6):
      raise TargetError(f'{file}: {prefix}_barycentric has NaN or all-zero rows')
    return targets_lib.at_barycentric(triangles, faces, bary)
  raise TargetError(f'{file}: {prefix} positions need {prefix}_vertices, or {prefix}_faces '
                    f'with {prefix}_barycentric')


def _units_scale(data, file: str) -> float:
  units = str(data['units']) if 'units' in data else 'mm'
  if units not in actor_json.UNITS_TO_MM:
    raise TargetError(f'{file}: unknown units {units!r}; expected one of '
                      f'{", ".join(actor_json.UNITS_TO_MM)}')
  return actor_json.UNITS_TO_MM[units]


def _load_npz(file: str) -> Dict[str, np.ndarray]:
  """Every array of an npz (no pickles); TargetError naming the file when it cannot be read."""
  if not os.path.isfile(file):
    raise TargetError(f'{file}: no such file')
  try:
    with np.load(file, allow_pickle=False) as data:
      return {k: data[k] for k in data.files}
  except (OSError, ValueError) as err:
    raise TargetError(f'{file}: unreadable npz ({type(err).__name__}: {err})') from None


def read_npz_targets(file: str, triangles: np.ndarray, num_vertices: int,
                     source_vertex_ids: Optional[np.ndarray] = None
                     ) -> Tuple[Dict[str, targets_lib.TargetSet], Optional[Dict]]:
  """Targets (and ground truth, when present) from an npz; see the module docstring."""
  data = _load_npz(file)
  scale = _units_scale(data, file)
  targets = {}
  try:
    if 'frames' in data:
      frames = to_actor_topology(np.asarray(data['frames'], np.float32) * scale, num_vertices,
                                 source_vertex_ids, file)
      if not np.all(np.isfinite(frames)):
        raise TargetError(f'{file}: frames contain NaN or infinite coordinates')
      targets['dense'] = targets_lib.dense_targets(frames, source=file)
    if 'markers' in data:
      points = _surface_points(data, 'marker', file, triangles, num_vertices)
      targets['markers'] = targets_lib.make_target_set(
          'markers', points, np.asarray(data['markers'], np.float32) * scale,
          visible=data.get('marker_visible'), source=file)
    if 'landmarks' in data:
      points = _surface_points(data, 'landmark', file, triangles, num_vertices)
      missing = [k for k in ('intrinsics', 'camera_rotation', 'camera_translation')
                 if k not in data]
      if missing:
        raise TargetError(f'{file}: landmarks need a camera; missing {", ".join(missing)}')
      camera = camera_lib.make_camera(data['intrinsics'], data['camera_rotation'],
                                      np.asarray(data['camera_translation']) * scale)
      pixels = np.asarray(data['landmarks'], np.float32)
      visible = data.get('landmark_visible')
      if visible is None:
        visible = np.all(np.isfinite(pixels), axis=-1)
      targets['landmarks'] = targets_lib.make_target_set(
          'landmarks', points, np.nan_to_num(pixels), visible=visible, camera=camera,
          source=file)
  except TargetError:
    raise
  except ValueError as err:
    message = str(err)
    raise TargetError(message if message.startswith(file) else f'{file}: {message}') from None
  if not targets:
    raise TargetError(f'{file}: no targets found (expected frames, markers or landmarks)')
  frame_counts = {k: t.num_frames for k, t in targets.items()}
  if min(frame_counts.values()) == 0:
    raise TargetError(f'{file}: no frames ({frame_counts})')
  if len(set(frame_counts.values())) > 1:
    raise TargetError(f'{file}: target kinds have different frame counts {frame_counts}')
  truth = None
  if 'gt_frames' in data:
    truth = {'frames': to_actor_topology(np.asarray(data['gt_frames'], np.float32) * scale,
                                         num_vertices, source_vertex_ids, file)}
    if 'gt_jaw_rotation' in data and 'gt_jaw_translation' in data:
      truth['jaw_rotation'] = np.asarray(data['gt_jaw_rotation'], np.float32)
      truth['jaw_translation'] = np.asarray(data['gt_jaw_translation'], np.float32) * scale
  return targets, truth


def read_ground_truth(path: str, num_vertices: int, num_frames: int,
                      source_vertex_ids: Optional[np.ndarray] = None) -> Dict:
  """Ground-truth frames (F, V, 3) mm from a folder of meshes or an npz.

  The npz holds `frames` (and optionally `jaw_rotation`, `jaw_translation`), as
  `prepare_actor.py`'s performance.npz does, or the targets npz's names `gt_frames`,
  `gt_jaw_rotation`, `gt_jaw_translation`; lengths in its `units` entry (default mm).
  """
  if os.path.isdir(path):
    frames = read_mesh_frames(path, num_vertices, source_vertex_ids=source_vertex_ids)
    truth = {'frames': frames}
  else:
    data = _load_npz(path)
    prefix = '' if 'frames' in data else 'gt_'
    if prefix + 'frames' not in data:
      raise TargetError(f'{path}: ground truth npz needs `frames` or `gt_frames` (F, V, 3)')
    scale = _units_scale(data, path)
    truth = {'frames': to_actor_topology(np.asarray(data[prefix + 'frames'], np.float32) * scale,
                                         num_vertices, source_vertex_ids, path)}
    if prefix + 'jaw_rotation' in data and prefix + 'jaw_translation' in data:
      truth['jaw_rotation'] = np.asarray(data[prefix + 'jaw_rotation'], np.float32)
      truth['jaw_translation'] = np.asarray(data[prefix + 'jaw_translation'],
                                            np.float32) * scale
  if truth['frames'].shape != (num_frames, num_vertices, 3):
    raise TargetError(f'{path}: ground truth frames have shape {truth["frames"].shape}, '
                      f'expected ({num_frames}, {num_vertices}, 3)')
  if not np.all(np.isfinite(truth['frames'])):
    raise TargetError(f'{path}: ground truth frames hold NaN or infinite values')
  return truth


def read_targets(path: str, triangles: np.ndarray, num_vertices: int, units: str = 'mm',
                 source_vertex_ids: Optional[np.ndarray] = None
                 ) -> Tuple[Dict[str, targets_lib.TargetSet], Optional[Dict]]:
  """Targets from a folder of meshes (dense) or an npz. Returns (targets, ground truth or None).

  Args:
    units: the units of a folder of meshes ('mm', 'cm', 'm'); an npz states its own.
    source_vertex_ids: (V,) the actor's vertices in the mesh it was cut from, if it was: frames
      in that mesh's topology are then cropped to the actor's.
  """
  if os.path.isdir(path):
    if units not in actor_json.UNITS_TO_MM:
      raise TargetError(f'{path}: unknown units {units!r}')
    frames = read_mesh_frames(path, num_vertices, actor_json.UNITS_TO_MM[units],
                              source_vertex_ids)
    return {'dense': targets_lib.dense_targets(frames, source=path)}, None
  if path.lower().endswith('.npz'):
    return read_npz_targets(path, triangles, num_vertices, source_vertex_ids)
  if not os.path.exists(path):
    raise TargetError(f'{path}: no such file or folder')
  raise TargetError(f'{path}: unknown target format; expected a folder of .obj/.ply frames '
                    'or an .npz')
