"""What the viewer reads: a model directory and, optionally, a performance directory.

A performance directory is a fitting run's workdir (`runs/fit.py`: `<method>/fit.npz` for every
method fitted, e.g. aim, aim_global, gbs) or a retargeting run's (`runs/retarget.py`:
`target_performance.npz` with the AIM retargeted frames and jaws and the delta-transfer frames).
A fit of an edited model, or a retargeting onto one, is shown with the edited model directory.

Ground truth (`--ground_truth`): 'auto' finds it where the run's own records say it is known (a
fit of the synthetic actor's held-out performance, recognised by the fit's recorded target hash;
a retargeting whose report names the synthetic recipe); 'synthetic' takes the synthetic
performance of the run's report.json without that check; a path reads frames (an npz or a
folder of meshes, `fitting/io.read_ground_truth`); 'none' shows none.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Tuple

import ml_collections
import numpy as np

from aim_jax import files
from aim_jax import model_dir as model_dir_lib
from aim_jax import workdir as workdir_lib
from aim_jax.data import synthetic_performance
from aim_jax.data.actor import Actor
from aim_jax.fitting import io as fit_io
from aim_jax.fitting import methods as methods_lib
from aim_jax.models import aim
from aim_jax.runs import identity as identity_lib
from aim_jax.runs import retarget as retarget_run
from aim_jax.viewer import scene

FIT_NPZ = 'fit.npz'
RETARGET_NPZ = 'target_performance.npz'
SYNTHETIC_RECIPE = 'synthetic recipe on the target actor'  # runs/retarget.py's report entry.


class ViewerError(ValueError):
  """Input the viewer cannot show; the message names the file."""


def load_model_scene(model_dir: str) -> Tuple[scene.ModelScene, model_dir_lib.LoadedModel,
                                               Actor]:
  """A model directory at its neutral: (scene, the loaded model, its actor).

  The fields are `aim.evaluate_chunked` at the actor's neutral vertices (an edited model's edit
  applied), the evaluation a learning run writes its meshes from.
  """
  model = model_dir_lib.load_model(model_dir)
  actor = model_dir_lib.actor_of_model(model.info)
  fields = aim.evaluate_chunked(model.params, actor.neutral, model.spec, edit=model.edit)
  constraints = model_dir_lib.read_constraints(model_dir, actor.num_vertices)
  points = np.zeros((0, 3)) if constraints is None else constraints.points
  bone_points = np.zeros((0, 3)) if constraints is None else constraints.bone_point
  bones = np.zeros((0,), np.int32) if constraints is None else constraints.bone_id
  result = scene.model_scene(actor.name, actor.faces, fields, actor.shapes, actor.skull,
                             actor.mandible, np.asarray(model.spec.pivot), points, bone_points,
                             bones)
  return result, model, actor


def fit_methods(fit_dir: str) -> list:
  """The methods of a fitting directory that have a `<method>/fit.npz`, in `methods.METHODS`
  order, then any other alphabetically."""
  if not os.path.isdir(fit_dir):
    return []
  found = [m for m in os.listdir(fit_dir) if os.path.isfile(os.path.join(fit_dir, m, FIT_NPZ))]
  known = [m for m in methods_lib.METHODS if m in found]
  return known + sorted(m for m in found if m not in known)


def _checked_frames(frames: np.ndarray, num_vertices: int, path: str) -> np.ndarray:
  frames = np.asarray(frames, np.float32)
  if frames.ndim != 3 or frames.shape[1:] != (num_vertices, 3) or frames.shape[0] == 0:
    raise ViewerError(f'{path}: frames have shape {frames.shape}, but the model has '
                      f'{num_vertices} vertices; show it with the model it was made with')
  return frames


def _jaw(data, rotation: str, translation: str, num_frames: int) -> tuple:
  if rotation not in data or translation not in data:
    return None, None
  r, t = np.asarray(data[rotation], np.float32), np.asarray(data[translation], np.float32)
  if r.shape != (num_frames, 3, 3) or t.shape != (num_frames, 3):
    return None, None
  return r, t


def read_tracks(path: str, num_vertices: int) -> Tuple[str, Tuple[scene.Track, ...]]:
  """The sequences of a performance directory: ('fit' or 'retarget', tracks).

  A fitting directory gives one track per method (frames and, for AIM methods, jaws); a
  retargeting directory 'aim' (frames, the mapped jaws) and 'delta_transfer' (frames).

  Raises:
    ViewerError: neither kind of directory, or frames of another topology (one line).
  """
  retarget_file = os.path.join(path, RETARGET_NPZ)
  if os.path.isfile(retarget_file):
    with np.load(retarget_file) as data:
      frames = _checked_frames(data['frames'], num_vertices, retarget_file)
      tracks = [scene.Track('aim', frames, *_jaw(data, 'jaw_rotation', 'jaw_translation',
                                                 len(frames)))]
      if 'delta_transfer_frames' in data:
        tracks.append(scene.Track('delta_transfer', _checked_frames(
            data['delta_transfer_frames'], num_vertices, retarget_file)))
    return 'retarget', tuple(tracks)
  methods = fit_methods(path)
  if not methods:
    raise ViewerError(f'{path}: neither a fitting directory (<method>/{FIT_NPZ}) nor a '
                      f'retargeting directory ({RETARGET_NPZ})')
  tracks = []
  for method in methods:
    file = os.path.join(path, method, FIT_NPZ)
    with np.load(file) as data:
      frames = _checked_frames(data['frames'], num_vertices, file)
      tracks.append(scene.Track(method, frames, *_jaw(data, 'jaw_rotation', 'jaw_translation',
                                                      len(frames))))
  lengths = {t.num_frames for t in tracks}
  if len(lengths) > 1:
    raise ViewerError(f'{path}: the methods have different frame counts {sorted(lengths)}')
  return 'fit', tuple(tracks)


def _report(path: str) -> dict:
  report_path = os.path.join(path, 'report.json')
  return files.read_json(report_path) if os.path.isfile(report_path) else {}


def synthetic_fit_truth(fit_dir: str, actor: Actor, check: bool = True) -> Optional[dict]:
  """The ground truth of a fit of the synthetic actor's held-out performance, else None.

  The fit's report.json holds its config, and so the performance's frame count and seed. With
  `check`, the synthetic targets that config makes for the model's actor must also be the fit's
  own: their content hash the one its identity.json recorded (`runs/identity.py`), so a fit of
  other targets is never compared with the synthetic performance.
  """
  report = _report(fit_dir)
  if actor.ground_truth is None or 'synthetic' not in report.get('config', {}):
    return None
  config = ml_collections.ConfigDict(report['config'])
  targets, truth = methods_lib.synthetic_sequence_targets(config, actor)
  if check:
    recorded = workdir_lib.read_identity(fit_dir)
    if recorded is None or identity_lib.targets_hash(targets, truth) != recorded.get('targets'):
      return None
  return truth


def synthetic_retarget_truth(retarget_dir: str, model: model_dir_lib.LoadedModel,
                             actor: Actor, check: bool = True) -> Optional[dict]:
  """The ground truth of a retargeting of the synthetic recipe: the same recipe played on the
  target actor (`runs/retarget.py`), with its frame count and seed from the report (and the
  source fit's); with `check` only when the report says that was its ground truth. None for a
  model without synthetic ground truth or an edited one (the recipe plays the unedited actor).
  """
  report = _report(retarget_dir)
  if actor.ground_truth is None or model.edit is not None or 'config' not in report:
    return None
  if check and report.get('ground_truth') != SYNTHETIC_RECIPE:
    return None
  config = ml_collections.ConfigDict(report['config'])
  num_frames, seed = retarget_run.synthetic_recipe(config, report.get('source_fit'))
  p = synthetic_performance.make_performance(actor, num_frames, seed)
  return {'frames': p.frames, 'jaw_rotation': p.jaw_rotation,
          'jaw_translation': p.jaw_translation}


def read_truth(path: str, kind: str, ground_truth: str, model: model_dir_lib.LoadedModel,
               actor: Actor, num_frames: int) -> Optional[scene.Track]:
  """The ground-truth track of a performance directory (see the module docstring), or None.

  Raises:
    ViewerError, fit_io.TargetError: a truth file that does not match (one line).
  """
  if ground_truth == 'none':
    return None
  if ground_truth in ('auto', 'synthetic'):
    check = ground_truth == 'auto'
    truth = (synthetic_fit_truth(path, actor, check) if kind == 'fit'
             else synthetic_retarget_truth(path, model, actor, check))
    if ground_truth == 'synthetic' and (truth is None or truth['frames'].shape[0] != num_frames):
      raise ViewerError(f'{path}: --ground_truth=synthetic needs a model of the synthetic actor '
                        f'(unedited, for a retargeting) and the run\'s report.json with its '
                        f'config, for {num_frames} frames')
    if truth is None or truth['frames'].shape[0] != num_frames:
      return None
  else:
    truth = fit_io.read_ground_truth(ground_truth, actor.num_vertices, num_frames,
                                     actor.source_vertex_ids)
  return scene.Track(scene.TRUTH, np.asarray(truth['frames'], np.float32),
                     truth.get('jaw_rotation'), truth.get('jaw_translation'))


def load_performance(path: str, model: model_dir_lib.LoadedModel, actor: Actor,
                     ground_truth: str = 'auto',
                     log: Optional[Callable[[str], None]] = print) -> scene.Performance:
  """A performance directory's tracks, their ground truth and the error colour scale."""
  if not os.path.isdir(path):
    raise ViewerError(f'{path}: no such performance directory')
  kind, tracks = read_tracks(path, actor.num_vertices)
  truth = read_truth(path, kind, ground_truth, model, actor, tracks[0].num_frames)
  if log:
    names = ', '.join(t.name for t in tracks)
    log(f'{path}: {kind} of {tracks[0].num_frames} frames ({names}); ground truth: '
        f'{"none" if truth is None else ("found" if ground_truth == "auto" else ground_truth)}')
  vmax = scene.error_vmax(tracks, truth, scene.sample_frames(tracks[0].num_frames))
  return scene.Performance(source=path, tracks=tracks, truth=truth, error_vmax=vmax)
