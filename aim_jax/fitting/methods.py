"""The fitting methods compared on one sequence: AIM, AIM-global and global blendshapes.

A method turns a learned model (`basis.FitModel`) and targets into fitted frames; `evaluate_methods`
measures every method's frames against ground truth (or the dense targets). What a fitting run
writes (fit.npz, meshes, report.json, ...) is `aim_jax/runs/fit.py`.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax.data import synthetic_performance
from aim_jax.data.actor import Actor
from aim_jax.fitting import baselines, synthetic_targets
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.fitting.basis import FitModel

METHODS = ('aim', 'aim_global', 'gbs')


def synthetic_sequence_targets(config: ml_collections.ConfigDict, actor: Actor):
  """Targets made from the synthetic actor's held-out performance: (targets, ground truth)."""
  s = config.synthetic
  performance = synthetic_performance.make_performance(actor, num_frames=s.num_frames, seed=s.seed)
  frames = performance.frames
  if s.kind == 'dense':
    targets = {'dense': targets_lib.dense_targets(frames, actor.region)}
  elif s.kind == 'markers':
    targets = {'markers': synthetic_targets.markers(
        actor.neutral, actor.faces, actor.region, frames, count=s.num_markers,
        noise_mm=s.marker_noise_mm, seed=s.seed)}
  elif s.kind == 'landmarks':
    camera = synthetic_targets.frontal_camera(actor.neutral)
    targets = {'landmarks': synthetic_targets.landmarks(
        actor.neutral, actor.faces, actor.region, frames, camera, count=s.num_landmarks,
        noise_px=s.noise_px, seed=s.seed)}
  else:
    raise ValueError(f'config.synthetic.kind must be dense, markers or landmarks, got {s.kind!r}')
  truth = {'frames': frames, 'jaw_rotation': performance.jaw_rotation,
           'jaw_translation': performance.jaw_translation}
  return targets, truth


def fit_method(method: str, config, model: FitModel, targets, workdir: str,
               log: Optional[Callable[[str], None]] = print) -> Dict[str, np.ndarray]:
  """Fits one method; returns at least 'frames' (F, V, 3) mm (and jaws for AIM methods)."""
  if method == 'gbs':
    weights = baselines.fit_gbs(model.gbs_basis, targets, ridge=config.gbs.ridge,
                                iterations=config.gbs.iterations)
    return {'frames': baselines.gbs_frames(model.gbs_basis, weights), 'weights': weights}
  if method not in ('aim', 'aim_global'):
    raise ValueError(f'unknown method {method!r}; expected one of {METHODS}')
  variant = 'global' if method == 'aim_global' else config.model.variant
  spec = fit_lib.fit_spec(config, model.basis.num_coefficients, variant)
  return fit_lib.fit_sequence(config, spec, model.basis, targets, os.path.join(workdir, method),
                              log=log)


def evaluate_methods(results: Dict[str, Dict], truth: Optional[Dict], targets, actor: Actor
                     ) -> Dict:
  """Error of every method: against ground truth frames when given, else against dense targets.

  Returns {'error_against', 'error_mm': {method: stats}, 'per_frame_mm': {method: (F,)},
  'jaw': {method: jaw_errors}}.
  """
  if truth is not None:
    reference, against = truth['frames'], 'ground_truth'
  elif 'dense' in targets:
    dense = targets['dense']
    ids = np.asarray(dense.points.vertices[:, 0])
    reference = np.full((dense.num_frames, actor.num_vertices, 3), np.nan, np.float32)
    reference[:, ids] = np.asarray(dense.values)
    against = 'dense_targets'
  else:
    return {'error_against': None, 'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}
  region = actor.region & np.all(np.isfinite(reference), axis=(0, 2))
  return {'error_against': against,
          **eval_lib.sequence_errors(results, reference, region, truth, actor.pivot)}


def parse_methods(config: ml_collections.ConfigDict) -> list:
  """The methods of `config.methods` (comma separated); ValueError naming any unknown one."""
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods:
    raise ValueError(f'config.methods: unknown or no method(s) {unknown}; expected {METHODS}')
  return methods
