"""USD export of a model directory or of a performance on disk: what `experiments/export_usd.py`
runs. The stage layout and the writing are `aim_jax/usd_export.py`.

Everything is read and checked before anything is written: a missing folder, an unreadable npz,
frames of another topology or shape end in one line (`usd_export.UsdExportError`, a ValueError)
naming the file, and the output is left as it was.
"""

from __future__ import annotations

import os
import zipfile
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from aim_jax import files, model_dir, usd_export
from aim_jax.data import actor_json, synthetic_performance
from aim_jax.data.actor import Actor
from aim_jax.fitting import io as fit_io
from aim_jax.models import aim

RETARGET_NPZ = 'target_performance.npz'
# Retargeting outputs: the frames of each method in target_performance.npz.
RETARGET_FRAMES = {'aim': 'frames', 'delta_transfer': 'delta_transfer_frames'}
TRANSFORMS = ('jaw_rotation', 'jaw_translation', 'head_rotation', 'head_translation')


def export_model(model_path: str, out: str,
                 shapes_per_second: float = usd_export.SHAPES_PER_SECOND,
                 log: Optional[Callable[[str], None]] = print) -> str:
  """Writes the USD of a model directory (learned or edited) to `out`; returns `out`.

  The fields are `aim.evaluate_chunked` at the actor's neutral vertices (with the model's edit),
  as the learning outputs are.
  """
  usd_export.check_out_path(out)
  usd_export.require_usd()
  if not os.path.isdir(model_path):
    raise usd_export.UsdExportError(f'{model_path}: no such model directory')
  model = model_dir.load_model(model_path)
  actor = model_dir.actor_of_model(model.info)
  fields = aim.evaluate_chunked(model.params, actor.neutral, model.spec, edit=model.edit)
  rotation, translation = (np.asarray(a) for a in aim.jaw_transforms(model.params))
  usd_export.write_model(out, actor, fields, rotation, translation,
                         np.asarray(model.spec.pivot), shapes_per_second,
                         metadata={'model_dir': os.path.abspath(model_path)})
  if log:
    log(f'wrote {out}: {actor.name}, {actor.num_vertices} vertices, {actor.num_shapes} shapes')
  return out


def locate_performance(path: str, method: str = 'aim') -> Tuple[str, str]:
  """The npz of a performance and the name of its frames array.

  Args:
    path: a fit_sequence.py workdir (<path>/<method>/fit.npz), a retarget.py workdir
      (target_performance.npz: method 'aim' or 'delta_transfer'), or an npz with `frames`
      (a fit.npz, target_performance.npz or prepare_actor.py's performance.npz).
  Returns:
    (npz path, frames key).
  """
  if os.path.isdir(path):
    if os.path.exists(os.path.join(path, RETARGET_NPZ)):
      if method not in RETARGET_FRAMES:
        raise usd_export.UsdExportError(f'{path}: a retargeting workdir holds the methods '
                                        f'{", ".join(RETARGET_FRAMES)}, not {method!r}')
      return os.path.join(path, RETARGET_NPZ), RETARGET_FRAMES[method]
    npz = os.path.join(path, method, 'fit.npz')
    if not os.path.exists(npz):
      found = sorted(m for m in os.listdir(path)
                     if os.path.exists(os.path.join(path, m, 'fit.npz')))
      raise usd_export.UsdExportError(
          f'{npz}: missing; {path} holds fits of {", ".join(found) or "no method"}')
    return npz, 'frames'
  if not os.path.exists(path):
    raise usd_export.UsdExportError(f'{path}: no such fit directory or npz')
  if os.path.basename(path) == RETARGET_NPZ and method in RETARGET_FRAMES:
    return path, RETARGET_FRAMES[method]
  return path, 'frames'


def read_performance(path: str, frames_key: str = 'frames') -> Dict[str, np.ndarray]:
  """'frames' (F, V, 3) mm and, when the npz has them, the jaw (and head) transforms.

  Lengths are converted from the npz's `units` entry (default mm). The delta-transfer frames of
  a retargeting run have no jaw.
  """
  try:
    with np.load(path) as data:
      arrays = {k: np.asarray(data[k]) for k in data.files}
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
    raise usd_export.UsdExportError(f'{path}: not a readable npz ({err})') from None
  if frames_key not in arrays:
    raise usd_export.UsdExportError(f'{path}: has no {frames_key!r} array (it has '
                                    f'{", ".join(sorted(arrays)) or "nothing"})')
  units = str(arrays.get('units', 'mm'))
  if units not in actor_json.UNITS_TO_MM:
    raise usd_export.UsdExportError(f'{path}: unknown units {units!r}')
  scale = np.float32(actor_json.UNITS_TO_MM[units])
  performance = {'frames': arrays[frames_key].astype(np.float32) * scale}
  if frames_key == 'frames':
    for key in TRANSFORMS:
      if key in arrays:
        value = arrays[key].astype(np.float32)
        performance[key] = value * scale if key.endswith('translation') else value
  return performance


def model_dir_of(performance_path: str, given: Optional[str]) -> str:
  """The model directory a performance is in: `given`, else a retargeting report's target."""
  if given:
    return given
  folder = performance_path if os.path.isdir(performance_path) else os.path.dirname(
      performance_path)
  report = os.path.join(folder, 'report.json')
  if os.path.exists(os.path.join(folder, RETARGET_NPZ)) and os.path.exists(report):
    target = files.read_json(report).get('target_model')
    if target:
      return target
  raise usd_export.UsdExportError(f'{performance_path}: give the model directory the '
                                  'performance was fitted with (--model_dir)')


def _synthetic_seed(performance_path: str) -> int:
  """The seed of the synthetic performance a run played, from its report.json: a fit's
  config.synthetic, a retargeting's source fit's (else its config.fit.synthetic); default 1."""
  folder = performance_path if os.path.isdir(performance_path) else os.path.dirname(
      performance_path)
  for path in (os.path.join(folder, 'report.json'),
               os.path.join(os.path.dirname(folder), 'report.json')):
    if not os.path.exists(path):
      continue
    report = files.read_json(path)
    source_fit = report.get('source_fit')
    if source_fit and os.path.exists(os.path.join(source_fit, 'report.json')):
      report = files.read_json(os.path.join(source_fit, 'report.json'))
    config = report.get('config', {})
    synthetic = config.get('synthetic') or config.get('fit', {}).get('synthetic') or {}
    if 'seed' in synthetic:
      return int(synthetic['seed'])
  return 1


def read_truth(ground_truth: Optional[str], actor: Actor, num_frames: int,
               performance_path: str) -> Optional[np.ndarray]:
  """Ground-truth frames (F, V, 3) mm: None, 'synthetic' (the synthetic actor's held-out
  performance with the seed the run's report.json recorded), or a folder / npz
  (`fit_io.read_ground_truth`)."""
  if not ground_truth or ground_truth == 'none':
    return None
  if ground_truth == 'synthetic':
    if actor.ground_truth is None:
      raise usd_export.UsdExportError(f'{actor.source or actor.name}: --ground_truth=synthetic '
                                      'needs a model of the synthetic actor')
    seed = _synthetic_seed(performance_path)
    return synthetic_performance.make_performance(actor, num_frames, seed).frames
  return fit_io.read_ground_truth(ground_truth, actor.num_vertices, num_frames,
                                  actor.source_vertex_ids)['frames']


def export_performance(performance_path: str, out: str, method: str = 'aim',
                       model_path: Optional[str] = None, ground_truth: Optional[str] = None,
                       fps: float = usd_export.DEFAULT_FPS,
                       log: Optional[Callable[[str], None]] = print) -> str:
  """Writes the USD of a fitted (or retargeted) performance to `out`; returns `out`.

  Args:
    performance_path: see `locate_performance`.
    method: the fitted method ('aim', 'aim_global', 'gbs'; 'aim' or 'delta_transfer' for a
      retargeting workdir).
    model_path: the model directory (default: a retargeting report's target model).
    ground_truth: None, 'synthetic', or a folder / npz of frames: the error primvars.
    fps: frames per second.
  """
  usd_export.check_out_path(out)
  usd_export.require_usd()
  npz, key = locate_performance(performance_path, method)
  performance = read_performance(npz, key)
  model_path = model_dir_of(performance_path, model_path)
  info = model_dir.read_info(model_path)
  actor = model_dir.actor_of_model(info)
  usd_export.check_performance(performance, actor.num_vertices, npz)
  truth = read_truth(ground_truth, actor, performance['frames'].shape[0], performance_path)
  pivot = np.asarray(model_dir.spec_of(info).pivot, np.float32)
  usd_export.write_performance(out, actor, performance, pivot, truth, fps,
                               metadata={'performance': os.path.abspath(npz),
                                         'frames': key, 'model_dir': os.path.abspath(model_path)})
  if log:
    log(f'wrote {out}: {performance["frames"].shape[0]} frames of {actor.name} at {fps:g} fps'
        + ('' if truth is None else ', with the error to the ground truth'))
  return out


def _bones(meshes: Dict, root: str) -> Dict[str, np.ndarray]:
  """Skull and mandible of read-back meshes as one (vertices, faces) pair."""
  skull, mandible = meshes[f'{root}/Skull'], meshes[f'{root}/JawPivot/Mandible']
  return {'vertices': np.concatenate([skull.vertices, mandible.vertices]),
          'faces': np.concatenate([skull.faces, mandible.faces + len(skull.vertices)])}


def _jaw_opening(path: str, root: str, times) -> np.ndarray:
  """How far the read-back mandible moved at each time (mean distance, mm)."""
  rest = usd_export.read_meshes(path)[f'{root}/JawPivot/Mandible'].vertices
  matrices = usd_export.world_transforms(path, f'{root}/JawPivot/Mandible', times)
  moved = np.einsum('vi,tij->tvj', rest, matrices[:, :3, :3]) + matrices[:, None, 3, :3]
  return np.linalg.norm(moved - rest, axis=-1).mean(axis=1)


def render_file(usd_path: str, png_path: str) -> str:
  """A PNG of what a written model or performance USD holds, read back from the file (world
  points at chosen time codes, primvars as colours), with the project's renderer."""
  from aim_jax import viz  # Matplotlib only when rendering.
  start, end, _ = usd_export.stage_times(usd_path)
  times = np.arange(int(start), int(end) + 1)
  root = usd_export.PERFORMANCE_ROOT
  if '/Model/Skin' in usd_export.read_meshes(usd_path, start):
    root = usd_export.MODEL_ROOT
  opening = _jaw_opening(usd_path, root, times)
  name = os.path.basename(usd_path)
  if root == usd_export.MODEL_ROOT:
    rest = usd_export.read_meshes(usd_path)
    open_time = float(times[int(np.argmax(opening))])
    opened = usd_export.read_meshes(usd_path, open_time)
    thickness = usd_export.read_primvar(usd_path, f'{root}/Skin', 'thickness')
    top = float(np.percentile(thickness, 99))
    skin, anatomy = rest[f'{root}/Skin'], rest[f'{root}/Anatomy']
    error = usd_export.read_primvar(usd_path, f'{root}/Skin', 'shapeError', open_time)
    shape = usd_export.shape_names(usd_path)[int(open_time)]
    panels = [
        dict(vertices=skin.vertices, faces=skin.faces, values=thickness, cmap='magma', vmin=0,
             vmax=top, label='mm', title='Skin: primvars:thickness'),
        dict(vertices=anatomy.vertices, faces=anatomy.faces, values=thickness, cmap='magma',
             vmin=0, vmax=top, label='thickness mm', title='Anatomy (bone points)'),
        dict(vertices=skin.vertices, faces=skin.faces,
             values=usd_export.read_primvar(usd_path, f'{root}/Skin', 'jawSkinning'),
             cmap='coolwarm', vmin=0, vmax=1, label='k', title='Skin: primvars:jawSkinning'),
        dict(vertices=opened[f'{root}/Skin'].vertices, faces=skin.faces, values=error,
             cmap='inferno', vmin=0, vmax=max(0.5, float(np.percentile(error, 99))), label='mm',
             title=f'time {open_time:g} ({shape}): shapeError', view='three_quarter'),
        dict(**_bones(rest, root), title='Skull, JawPivot/Mandible', view='side'),
        dict(**_bones(opened, root), title=f'time {open_time:g}: mandible', view='side'),
    ]
  else:
    chosen = [float(times[0]), float(times[int(np.argmax(opening))]), float(times[-1])]
    panels, bone_panels = [], []
    for t in chosen:
      meshes = usd_export.read_meshes(usd_path, t)
      error = usd_export.read_primvar(usd_path, f'{root}/Skin', 'error', t)
      skin = meshes[f'{root}/Skin']
      panel = dict(vertices=skin.vertices, faces=skin.faces, title=f'Skin, time {t:g}',
                   view='three_quarter')
      if error is not None:
        panel.update(values=error, cmap='inferno', vmin=0, vmax=1.0, label='error mm')
      panels.append(panel)
      bone_panels.append(dict(**_bones(meshes, root), title=f'bones, time {t:g}', view='side'))
    panels += bone_panels
  return viz.render_grid(png_path, panels, ncols=3, title=f'{name} read back with pxr')
