"""Model learning (L_Model): data on device, a jitted train step, and the optax training loop.

The loop is deterministic given the config seed: the batch of step i is drawn from
`fold_in(seed, i)`, so a run killed and resumed from its last orbax checkpoint reaches the same
parameters as an uninterrupted one.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from typing import Callable, Dict, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from aim_jax import geometry
from aim_jax import losses
from aim_jax import metrics_log
from aim_jax import progress as progress_lib
from aim_jax import train_loop
from aim_jax.anatomy.constraints import SparseConstraints
from aim_jax.data.actor import Actor
from aim_jax.models import aim

LOSS_TERMS = ('reconstruction', 'anatomy', 'thickness', 'skinning', 'symmetry')


@flax.struct.dataclass
class LearningData:
  """Everything the train step reads, as device arrays (mm).

  template: (V, 3) neutral = query points; shapes: (S, V, 3) targets; partner: (V,) mirror
  vertex (-1 none); plane: (4,) mirror plane; unconstrained: (V,) bool, vertices without a
  constraint (where the small-thickness prior applies); c_*: (M, ...) sparse constraints;
  jaw_probe: (P, 3) mandible points and jaw_target: (S, P, 3) where the user's per-shape jaws
  move them (None when the actor has no `shape_jaws`).
  """
  template: jnp.ndarray
  shapes: jnp.ndarray
  partner: jnp.ndarray
  plane: jnp.ndarray
  unconstrained: jnp.ndarray
  c_points: jnp.ndarray
  c_bone: jnp.ndarray
  c_normal: jnp.ndarray
  c_thickness: jnp.ndarray
  c_bone_id: jnp.ndarray
  jaw_probe: Optional[jnp.ndarray] = None
  jaw_target: Optional[jnp.ndarray] = None


JAW_PROBES = 256  # Mandible vertices the jaw prior is measured on.


def jaw_prior_targets(actor: Actor):
  """(probe (P, 3), target (S, P, 3)) mm for the jaw prior, or (None, None) without
  `actor.shape_jaws`. Probes: up to JAW_PROBES mandible vertices, evenly spread in index."""
  if actor.shape_jaws is None:
    return None, None
  vertices = np.asarray(actor.mandible.vertices, np.float32)
  step = max(1, len(vertices) // JAW_PROBES)
  probe = vertices[::step][:JAW_PROBES]
  rotation, translation = (np.asarray(a, np.float32) for a in actor.shape_jaws)
  pivot = np.asarray(actor.pivot, np.float32)
  return probe, np.asarray(geometry.rigid_about_pivot(probe, rotation, translation, pivot))


def make_learning_data(actor: Actor, constraints: SparseConstraints) -> LearningData:
  if constraints.count == 0:
    raise ValueError(f'{actor.source or actor.name}: no sparse anatomical constraint was found '
                     '(check the bones lie under the skin and the trusted mask)')
  return LearningData(
      template=jnp.asarray(actor.neutral), shapes=jnp.asarray(actor.shapes),
      partner=jnp.asarray(actor.symmetry), plane=jnp.asarray(actor.mirror_plane),
      unconstrained=jnp.asarray(~constraints.vertex_mask()),
      c_points=jnp.asarray(constraints.points), c_bone=jnp.asarray(constraints.bone_point),
      c_normal=jnp.asarray(constraints.bone_normal),
      c_thickness=jnp.asarray(constraints.thickness), c_bone_id=jnp.asarray(constraints.bone_id),
      **{k: None if v is None else jnp.asarray(v)
         for k, v in zip(('jaw_probe', 'jaw_target'), jaw_prior_targets(actor))})


def model_spec(config: ml_collections.ConfigDict, actor: Actor) -> aim.AIMSpec:
  m = config.model
  return aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes, hidden=m.hidden,
                       depth=m.depth, activation=m.activation, w0=m.w0, sine=m.sine,
                       expression_hidden=m.expression_hidden, bone_scale=m.bone_scale,
                       thickness_scale=m.thickness_scale, delta_scale=m.delta_scale,
                       layout=m.layout)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with a warmup + cosine schedule; jaw rotations and translations get their own rates.

  Gradients are clipped to `config.train.grad_clip_norm` (global norm; 0 disables) before Adam:
  without it SIREN training at the paper's 2e-3 occasionally spikes and kills the thickness
  network (seen on the synthetic demo at step ~900).
  """
  t = config.train

  def schedule(lr):
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=lr, warmup_steps=t.warmup_steps, decay_steps=max(t.num_steps, t.warmup_steps + 1),
        end_value=lr * t.final_lr_fraction)

  def label(params):
    labels = jax.tree_util.tree_map(lambda _: 'networks', params)
    labels['jaw'] = {'rot6d': 'jaw_rotation', 'translation': 'jaw_translation'}
    return labels

  adam = optax.multi_transform(
      {'networks': optax.adam(schedule(t.learning_rate), b2=t.adam_b2),
       'jaw_rotation': optax.adam(schedule(t.jaw_rotation_lr), b2=t.adam_b2),
       'jaw_translation': optax.adam(schedule(t.jaw_translation_lr), b2=t.adam_b2)}, label)
  if t.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(t.grad_clip_norm), adam)
  return adam


def loss_fn(params: Dict, data: LearningData, key: jax.Array, spec: aim.AIMSpec,
            weights: Dict[str, float], batch_size: int, constraint_batch: int,
            symmetry_batch: int, skinning_jitter_mm: float):
  """L_Model on one batch. Returns (total, dict of the unweighted terms).

  `weights` maps each term ('reconstruction', 'anatomy', 'anatomy_normal', 'thickness',
  'thickness_small', 'skinning', 'skinning_smooth', 'symmetry', 'expression_small') to its
  weight; a term whose
  weight is 0 is not computed at all.
  """
  num_vertices = data.template.shape[0]
  k_batch, k_constraint, k_jitter = jax.random.split(key, 3)
  if batch_size and batch_size < num_vertices:
    index = jax.random.choice(k_batch, num_vertices, (batch_size,), replace=False)
  else:
    index = jnp.arange(num_vertices)
  points = data.template[index]
  fields = aim.anatomy(params, points, spec, aim.NETWORKS)
  rotation, translation = aim.jaw_transforms(params)
  predicted = aim.reconstruct_from_fields(fields, rotation, translation, spec)
  terms = {'reconstruction': losses.reconstruction(predicted, data.shapes[:, index])}
  if weights.get('expression_small', 0.0):
    terms['expression_small'] = losses.expression_small(fields['expression'])
  if weights.get('jaw_prior', 0.0) and data.jaw_probe is not None:
    terms['jaw_prior'] = losses.jaw_prior(rotation, translation, data.jaw_probe,
                                          data.jaw_target, jnp.asarray(spec.pivot, jnp.float32))

  uses = lambda *names: any(weights.get(n, 0.0) for n in names)
  num_constraints = data.c_points.shape[0]
  if uses('anatomy', 'anatomy_normal', 'thickness', 'skinning'):
    if constraint_batch and constraint_batch < num_constraints:
      c_index = jax.random.choice(k_constraint, num_constraints, (constraint_batch,),
                                  replace=False)
    else:
      c_index = jnp.arange(num_constraints)
    c_fields = aim.anatomy(params, data.c_points[c_index], spec, aim.ANATOMY_NETWORKS)
    terms['anatomy'] = losses.bone_points(c_fields['bone'], data.c_bone[c_index])
    terms['anatomy_normal'] = losses.bone_normals(c_fields['normal'], data.c_normal[c_index])
    terms['thickness'] = losses.thickness_match(c_fields['thickness'], data.c_thickness[c_index])
    terms['skinning'] = losses.skinning_prior(c_fields['skinning'], data.c_bone_id[c_index])
  if uses('thickness_small'):
    unconstrained = data.unconstrained[index].astype(jnp.float32)
    terms['thickness_small'] = (jnp.sum(fields['thickness'] ** 2 * unconstrained)
                                / jnp.maximum(jnp.sum(unconstrained), 1.0))
  sub = index[:symmetry_batch] if symmetry_batch else index
  if uses('skinning_smooth', 'thickness_smooth'):
    jitter = skinning_jitter_mm * jax.random.normal(k_jitter, (sub.shape[0], 3))
    names = tuple(n for n, term in (('skinning', 'skinning_smooth'),
                                    ('thickness', 'thickness_smooth')) if uses(term))
    nearby = aim.anatomy(params, data.template[sub] + jitter, spec, names)
    if uses('skinning_smooth'):
      terms['skinning_smooth'] = losses.skinning_smoothness(
          fields['skinning'][:sub.shape[0]], nearby['skinning'])
    if uses('thickness_smooth'):
      terms['thickness_smooth'] = losses.thickness_smoothness(
          fields['thickness'][:sub.shape[0]], nearby['thickness'])
  if uses('symmetry'):
    partner = data.partner[sub]
    valid = partner >= 0
    mirrored = aim.anatomy(params, data.template[jnp.maximum(partner, 0)], spec,
                           aim.ANATOMY_NETWORKS)
    own = {k: v[:sub.shape[0]] for k, v in fields.items() if k in aim.ANATOMY_NETWORKS}
    terms['symmetry'] = losses.symmetry(own, mirrored, data.plane, valid)
  total = sum(weights.get(name, 0.0) * value for name, value in terms.items())
  return total, terms


def loss_weights(config: ml_collections.ConfigDict) -> Dict[str, float]:
  """The weight of every term, with the Table 3 switches applied (a switched-off term is 0)."""
  w, use = config.loss.weights, config.loss.use
  weights = {
      'reconstruction': w.reconstruction,
      'anatomy': w.anatomy if use.anatomy else 0.0,
      'anatomy_normal': w.anatomy_normal if use.anatomy else 0.0,
      'thickness': w.thickness if use.thickness else 0.0,
      'thickness_small': w.thickness_small if use.thickness else 0.0,
      'thickness_smooth': w.thickness_smooth if use.thickness else 0.0,
      'skinning': w.skinning if use.skinning else 0.0,
      'skinning_smooth': w.skinning_smooth if use.skinning else 0.0,
      'symmetry': w.symmetry if use.symmetry else 0.0,
      'expression_small': w.expression_small if use.expression_small else 0.0,
      # Optional (configs/learn_ict.py): acts only on actors with per-shape jaws (shape_jaws).
      'jaw_prior': w.jaw_prior,
  }
  return {k: float(v) for k, v in weights.items()}


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Dict
  opt_state: optax.OptState


def create_state(config, spec: aim.AIMSpec, optimizer) -> TrainState:
  params = aim.init(jax.random.PRNGKey(config.seed), spec)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params))


def make_train_step(config, spec: aim.AIMSpec, optimizer) -> Callable:
  """A jitted `train_step(state, data) -> (state, terms)`."""
  t = config.train
  compute_loss = functools.partial(
      loss_fn, spec=spec, weights=loss_weights(config), batch_size=t.batch_size,
      constraint_batch=t.constraint_batch, symmetry_batch=t.symmetry_batch,
      skinning_jitter_mm=config.loss.skinning_jitter_mm)
  base_key = jax.random.PRNGKey(config.seed + 1)

  def train_step(state: TrainState, data: LearningData):
    key = jax.random.fold_in(base_key, state.step)
    (total, terms), grads = jax.value_and_grad(compute_loss, has_aux=True)(
        state.params, data, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    terms = dict(terms, total=total)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), terms

  return jax.jit(train_step, donate_argnums=(0,))


def reconstruction_error_mm(params, spec: aim.AIMSpec, actor: Actor) -> np.ndarray:
  """(S, V) per-vertex Euclidean error (mm) of the reconstructed learning shapes."""
  shapes = aim.evaluate_chunked(params, actor.neutral, spec)['shapes']
  return np.linalg.norm(shapes - actor.shapes, axis=-1)


def checkpoint_manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


def train(config: ml_collections.ConfigDict, actor: Actor, constraints: SparseConstraints,
          workdir: str, log: Optional[Callable[[str], None]] = print,
          stop_after: Optional[int] = None):
  """Learns an AIM model; resumes from the latest checkpoint in `workdir/checkpoints`.

  Writes `metrics.jsonl` (one line per logged step: step, terms, rate) and checkpoints every
  `config.train.checkpoint_every` steps and at the end (or on SIGTERM / Ctrl-C).

  Args:
    stop_after: stop (with a checkpoint) after this global step; for tests of resuming.
  Returns:
    (params, spec, history) with history a list of the logged metric dicts of this run.
  """
  t = config.train
  spec = model_spec(config, actor)
  optimizer = make_optimizer(config)
  data = make_learning_data(actor, constraints)
  train_step = make_train_step(config, spec, optimizer)
  os.makedirs(workdir, exist_ok=True)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  history = []
  with checkpoint_manager(workdir, t.max_checkpoints) as manager, train_loop.StopSignals() as stop:
    state = create_state(config, spec, optimizer)
    latest = manager.latest_step()
    if latest is not None:
      state = manager.restore(latest, args=ocp.args.StandardRestore(
          jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)))
      if log:
        log(f'resumed from checkpoint at step {latest} in {workdir}')
      metrics_log.truncate(metrics_path, latest)
    start = int(state.step)
    end = t.num_steps if stop_after is None else min(t.num_steps, stop_after)
    meter = progress_lib.Progress(total=t.num_steps, start=start, log=log)
    sums, count = None, 0
    step = start
    interrupted = False
    try:
      for step in range(start + 1, end + 1):
        state, terms = train_step(state, data)
        sums = terms if sums is None else jax.tree_util.tree_map(jnp.add, sums, terms)
        count += 1
        if step % t.log_every == 0 or step == end:
          means = {k: float(v) / count for k, v in jax.device_get(sums).items()}
          record = meter.update(step, means)
          if step % t.eval_every == 0 or step == end:
            error = reconstruction_error_mm(state.params, spec, actor)
            record['reconstruction_mm'] = float(error[:, actor.region].mean())
            meter.note(f'reconstruction {record["reconstruction_mm"]:.4f} mm')
          meter.flush()
          history.append(record)
          metrics_log.append(metrics_path, record)
          sums, count = None, 0
        if step % t.checkpoint_every == 0:
          manager.save(step, args=ocp.args.StandardSave(state))
        if stop.requested:
          if log:
            log(f'stop requested at step {step}: checkpointing')
          interrupted = True
          break
    except KeyboardInterrupt:
      if log:
        log(f'interrupted at step {step}: checkpointing')
      raise
    finally:
      if int(state.step) != (manager.latest_step() or 0):
        manager.save(int(state.step), args=ocp.args.StandardSave(state), force=True)
      manager.wait_until_finished()
  if interrupted:
    raise train_loop.StopRequested(f'stopped at step {int(state.step)} with a checkpoint in {workdir}; '
                        'rerun the same command to resume')
  return state.params, spec, history

