"""Learn-and-evaluate: what `experiments/learn_model.py` runs, as one library call.

actor -> sparse constraints (cached in the model directory) -> learning (resumable) ->
evaluation -> meshes, renders, loss curves (`learn_outputs.py`), `summary.json` and, when
asked, model.usdc (`usd_export.write_model`) in the workdir, which is a model directory
(`aim_jax/model_dir.py`).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Dict, Optional

import ml_collections
import numpy as np

from aim_jax import anatomy_quality as quality_lib
from aim_jax import eval as eval_lib
from aim_jax import files, learning, model_dir, train_loop, usd_export
from aim_jax import workdir as workdir_lib
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data.actor import Actor
from aim_jax.models import aim
from aim_jax.runs import identity as identity_lib
from aim_jax.runs import learn_outputs

USD_FILE = 'model.usdc'  # learn_and_evaluate(usd=True) (aim_jax/usd_export.py).


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
  model_dir.write_constraints(workdir, constraints)
  if log:
    log(f'sparse anatomical constraints: {constraints.count} points on '
        f'{100 * constraints.fraction:.1f}% of {actor.num_vertices} vertices '
        f'({time.perf_counter() - start:.1f} s)')
  return constraints


def evaluate(params, spec: aim.AIMSpec, actor: Actor,
             constraints: constraints_lib.SparseConstraints) -> Dict:
  """Reconstruction, anatomy quality (`anatomy_quality`, with the ground truth's beside when
  known) and (with ground truth) dense anatomy errors of a learned model.

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
      'anatomy_quality': quality_lib.anatomy_quality(fields, actor),
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


def check_constraint_fraction(actor: Actor, constraints: constraints_lib.SparseConstraints,
                              config: ml_collections.ConfigDict,
                              log: Optional[Callable[[str], None]] = print):
  """Refuses too few constraints (below `constraints.min_fraction` of the vertices: the bones
  are probably misplaced) and warns below `constraints.warn_fraction`."""
  c = config.constraints
  percent = 100 * constraints.fraction
  if constraints.fraction < c.min_fraction:
    raise ValueError(
        f'{actor.source or actor.name}: only {constraints.count} sparse constraints '
        f'({percent:.2f}% of the vertices, below constraints.min_fraction '
        f'{100 * c.min_fraction:g}%): are the skull and mandible under the skin, in the same '
        'units and axes? Lower constraints.min_fraction to learn anyway')
  if constraints.fraction < c.warn_fraction and log:
    log(f'WARNING: only {percent:.2f}% of the vertices carry a sparse constraint (fewer than '
        f'{100 * c.warn_fraction:g}%); the anatomy between them will be poorly determined')


def learn_and_evaluate(config: ml_collections.ConfigDict, actor: Actor, workdir: str,
                       log: Optional[Callable[[str], None]] = print,
                       restart: bool = False, usd: bool = False) -> Dict:
  """Learns an AIM for `actor` in `workdir` (resuming if it holds a checkpoint), evaluates it
  and writes every output. Returns the summary written to `workdir/summary.json`.

  The workdir is locked for the run and must hold a run of the same actor and config (else
  `workdir.WorkdirError`, unless `restart`, which moves the old run aside). `model.json` is
  written once the learned state exists; nothing is written from a diverged state. With `usd`
  the model is also written as `USD_FILE` (usd-core missing: UsdExportError before anything).
  """
  if usd:
    usd_export.require_usd()  # usd-core missing: one line now, not after learning.
  spec = learning.model_spec(config, actor)
  learning.StepSettings.from_config(config, spec)  # Bad batch sizes fail here, in one line.
  train_loop.loop_options(config.train)  # So do bad step counts and intervals.
  if model_dir.is_edited(workdir):
    raise workdir_lib.WorkdirError(
        f'{workdir}: holds an edited model (edit_anatomy.py); learning would drop its edit. '
        'Learn in another workdir')
  identity = identity_lib.learning_identity(config, actor)
  with workdir_lib.open_run(workdir, identity, restart=restart, log=log):
    return _learn_and_evaluate(config, actor, workdir, log, usd)


def _learn_and_evaluate(config, actor, workdir, log, usd):
  constraints = constraints_for(actor, config, workdir, log)
  check_constraint_fraction(actor, constraints, config, log)
  start = time.perf_counter()
  params, spec, _ = learning.train(config, actor, constraints, workdir, log=log)
  model_dir.save_model(workdir, spec, config, actor, constraints)
  summary, fields = evaluate(params, spec, actor, constraints)
  summary['learning_seconds_this_run'] = time.perf_counter() - start
  learn_outputs.write_learning_outputs(workdir, config, actor, constraints, fields, summary)
  if usd:
    rotation, translation = (np.asarray(a) for a in aim.jaw_transforms(params))
    usd_export.write_model(os.path.join(workdir, USD_FILE), actor, fields, rotation, translation,
                           np.asarray(spec.pivot), metadata={'model_dir': os.path.abspath(workdir)})
  files.write_json(os.path.join(workdir, 'summary.json'), summary)
  if log:
    log(learn_outputs.format_summary(summary))
  return summary
