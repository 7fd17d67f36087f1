"""Learn-and-evaluate: what `experiments/learn_model.py` runs, as one library call.

actor -> sparse constraints (cached in the model directory) -> learning (resumable) ->
evaluation -> meshes, renders, loss curves (`learn_outputs.py`) and `summary.json` in the
workdir, which is a model directory (`aim_jax/model_dir.py`).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import files, learning, model_dir
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data.actor import Actor
from aim_jax.models import aim
from aim_jax.runs import learn_outputs


def constraints_for(actor: Actor, config: ml_collections.ConfigDict, workdir: str,
                    log: Optional[Callable[[str], None]] = print):
  """Computes the actor's sparse constraints, or loads them from a previous run in workdir."""
  constraints = model_dir.read_constraints(workdir, actor.num_vertices)
  if constraints is not None:
    return constraints
  start = time.perf_counter()
  constraints = constraints_lib.compute_constraints(
      actor, max_depth_mm=config.constraints.max_depth_mm,
      min_facing=config.constraints.min_facing,
      source_fraction=config.constraints.source_fraction, seed=config.seed)
  if log:
    log(f'sparse anatomical constraints: {constraints.count} points on '
        f'{100 * constraints.fraction:.1f}% of {actor.num_vertices} vertices '
        f'({time.perf_counter() - start:.1f} s)')
  return constraints


def evaluate(params, spec: aim.AIMSpec, actor: Actor,
             constraints: constraints_lib.SparseConstraints) -> Dict:
  """Reconstruction and (with ground truth) dense anatomy errors of a learned model.

  Returns (summary dict, evaluated fields at the neutral's vertices).
  """
  fields = aim.evaluate_chunked(params, actor.neutral, spec)
  errors = eval_lib.vertex_errors(fields['shapes'], actor.shapes)  # (S, V)
  summary = {
      'actor': actor.name,
      'num_vertices': actor.num_vertices,
      'num_shapes': actor.num_shapes,
      'reconstruction_mm': eval_lib.stats(errors[:, actor.region]),
      'reconstruction_mm_per_shape': {
          name: float(errors[i, actor.region].mean())
          for i, name in enumerate(actor.shape_names)},
      'constraints': {'count': constraints.count, 'fraction': constraints.fraction},
  }
  gt = actor.ground_truth
  if gt is not None:
    summary['anatomy'] = eval_lib.anatomy_errors(fields, gt, constraints.vertex_mask(),
                                                 actor.region)
    rotation, translation = (np.asarray(a) for a in aim.jaw_transforms(params))
    summary['jaw'] = eval_lib.jaw_errors(rotation[1:], translation[1:], gt.jaw_rotation[1:],
                                         gt.jaw_translation[1:], actor.pivot)
    summary['constraints'].update(
        constraints_lib.check_against_ground_truth(actor, constraints))
  return summary, fields


def learn_and_evaluate(config: ml_collections.ConfigDict, actor: Actor, workdir: str,
                       log: Optional[Callable[[str], None]] = print) -> Dict:
  """Learns an AIM for `actor` in `workdir` (resuming if it holds a checkpoint), evaluates it
  and writes every output. Returns the summary written to `workdir/summary.json`."""
  os.makedirs(workdir, exist_ok=True)
  constraints = constraints_for(actor, config, workdir, log)
  spec = learning.model_spec(config, actor)
  model_dir.save_model(workdir, spec, config, actor, constraints)
  start = time.perf_counter()
  params, spec, _ = learning.train(config, actor, constraints, workdir, log=log)
  summary, fields = evaluate(params, spec, actor, constraints)
  summary['learning_seconds_this_run'] = time.perf_counter() - start
  learn_outputs.write_learning_outputs(workdir, config, actor, constraints, fields, summary)
  files.write_json(os.path.join(workdir, 'summary.json'), summary)
  if log:
    log(learn_outputs.format_summary(summary))
  return summary
