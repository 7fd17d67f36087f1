"""What produced a run's workdir: content hashes of its inputs and the config values that decide
its results, recorded and checked through `aim_jax/workdir.py` (`workdir.claim`).

A learning workdir is defined by its actor's content and every config value but the step count,
the intervals and the outputs (training further with more `train.num_steps` resumes); a fitting
workdir by its model directory's content, the targets' content and every config value but the
intervals and the outputs (finished chunks are reused, so a changed step count is a new fit).
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import ml_collections
import numpy as np

from aim_jax import model_dir as model_dir_lib
from aim_jax import workdir as workdir_lib
from aim_jax.data.actor import Actor

# Config keys that do not change what a run computes (or, for learning, may grow on resume).
RUN_KEYS = ('train.log_every', 'train.checkpoint_every', 'train.max_checkpoints',
            'train.steps_per_call', 'train.eval_every', 'output')


def actor_hash(actor: Actor) -> str:
  """A content hash of everything of an actor that learning reads (meshes, masks, pivot, jaws,
  names, ground truth)."""
  gt = actor.ground_truth
  jaws = actor.shape_jaws or (None, None)
  return workdir_lib.content_hash(
      actor.shapes, actor.faces, actor.skull.vertices, actor.skull.faces,
      actor.mandible.vertices, actor.mandible.faces, actor.pivot, actor.trusted, actor.region,
      '/'.join(actor.shape_names), jaws[0], jaws[1],
      *(() if gt is None else (gt.bone_point, gt.thickness, gt.jaw_rotation)))


def config_values(config: ml_collections.ConfigDict, drop: Sequence[str]) -> Dict:
  """The config as a nested dict without the dotted keys (or sections) in `drop`."""
  values = config.to_dict()
  for key in drop:
    *path, last = key.split('.')
    node = values
    for part in path:
      node = node.get(part, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
      node.pop(last, None)
  return values


def learning_identity(config: ml_collections.ConfigDict, actor: Actor) -> Dict:
  return {'kind': 'learn', 'actor': actor_hash(actor),
          'config': config_values(config, RUN_KEYS + ('train.num_steps',))}


def model_hash(model_dir: str) -> str:
  """The content of a model directory: model.json, constraints, an edit, the newest checkpoint
  step."""
  parts = []
  for name in (model_dir_lib.MODEL_JSON, 'constraints.npz', model_dir_lib.EDIT_NPZ):
    path = os.path.join(model_dir, name)
    parts.append(workdir_lib.file_hash(path) if os.path.exists(path) else None)
  checkpoints = os.path.join(model_dir, model_dir_lib.CHECKPOINTS)
  steps = sorted((int(n) for n in os.listdir(checkpoints) if n.isdigit()), reverse=True) if (
      os.path.isdir(checkpoints)) else []
  parts.append(str(steps[0]) if steps else None)
  return workdir_lib.content_hash(*parts)


def targets_hash(targets: Dict, truth: Optional[Dict]) -> str:
  parts = []
  for kind in sorted(targets):
    t = targets[kind]
    parts += [kind, np.asarray(t.values), np.asarray(t.visible), np.asarray(t.points.vertices),
              np.asarray(t.points.weights)]
    if t.camera is not None:
      parts += [np.asarray(t.camera.intrinsics), np.asarray(t.camera.rotation),
                np.asarray(t.camera.translation)]
  for key in sorted(truth or {}):
    parts += [key, truth[key]]  # Arrays, or frames made a block at a time (content_hash).
  return workdir_lib.content_hash(*parts)


def fitting_identity(config: ml_collections.ConfigDict, model_dir: str, targets: Dict,
                     truth: Optional[Dict]) -> Dict:
  return {'kind': 'fit', 'model': model_hash(model_dir),
          'targets': targets_hash(targets, truth), 'config': config_values(config, RUN_KEYS)}
