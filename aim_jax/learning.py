"""Model learning (L_Model): data on device, a jitted train step, and the optax training loop.

The loop is deterministic given the config seed: the batch of step i is drawn from
`fold_in(seed, i)`, so a run killed and resumed from its last orbax checkpoint reaches the same
parameters as an uninterrupted one. With several devices (GPUs, or
XLA_FLAGS=--xla_force_host_platform_device_count=N on a CPU) each step's query points are split
across them (data parallel, parameters replicated; `_split_points`), reaching the parameters of
one device to float tolerance.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from aim_jax import geometry, losses, sampling, train_loop
from aim_jax.anatomy import depths as depths_lib
from aim_jax.anatomy.constraints import SparseConstraints
from aim_jax.data.actor import Actor
from aim_jax.models import aim


@flax.struct.dataclass
class ConstraintTargets:
  """The sparse constraints as the loss reads them, device arrays over M constraints (mm).

  points: (M, 3) skin points; bone: (M, 3) bone points; normal: (M, 3) unit bone normals;
  thickness: (M,) mm; bone_id: (M,) int, 0 cranium, 1 mandible.
  """
  points: jnp.ndarray
  bone: jnp.ndarray
  normal: jnp.ndarray
  thickness: jnp.ndarray
  bone_id: jnp.ndarray

  @classmethod
  def of(cls, constraints: SparseConstraints) -> 'ConstraintTargets':
    return cls(points=jnp.asarray(constraints.points), bone=jnp.asarray(constraints.bone_point),
               normal=jnp.asarray(constraints.bone_normal),
               thickness=jnp.asarray(constraints.thickness),
               bone_id=jnp.asarray(constraints.bone_id))


@flax.struct.dataclass
class LearningData:
  """Everything the train step reads, as device arrays (mm).

  template: (V, 3) neutral = query points; shapes: (S, V, 3) targets; partner: (V,) mirror
  vertex (-1 none); plane: (4,) mirror plane; unconstrained: (V,) bool, vertices without a
  constraint (where the small-thickness prior applies); constraints: the sparse constraints;
  jaw_probe: (P, 3) mandible points and jaw_target: (S, P, 3) where the user's per-shape jaws
  move them (None when the actor has no `shape_jaws`); fold_faces: (F, 3) int the skin's
  triangles and fold_normal: (F, 3) their area normals over their squared length (per mm^2),
  which the fold penalty reads (`losses.fold`); prior_depth: (V,) mm the closest-point depth of
  the actor's bone meshes and prior_mask: (V,) bool where it is used (trusted, bone behind the
  skin within `DEPTH_PRIOR_MAX_MM`), for the depth prior (None unless asked for).
  """
  template: jnp.ndarray
  shapes: jnp.ndarray
  partner: jnp.ndarray
  plane: jnp.ndarray
  unconstrained: jnp.ndarray
  constraints: ConstraintTargets
  fold_faces: jnp.ndarray
  fold_normal: jnp.ndarray
  jaw_probe: Optional[jnp.ndarray] = None
  jaw_target: Optional[jnp.ndarray] = None
  prior_depth: Optional[jnp.ndarray] = None
  prior_mask: Optional[jnp.ndarray] = None


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


def skin_fold_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """(F, 3) float32 n / |n|^2 of the (F, 3) triangles' area normals n over (V, 3) mm vertices."""
  v = np.asarray(vertices, np.float64)[np.asarray(faces)]
  normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
  return (normal / np.maximum(np.sum(normal ** 2, axis=-1, keepdims=True), 1e-12)).astype(
      np.float32)


# Closest-point depths beyond this (mm) are not used by the depth prior: no bone under the skin.
DEPTH_PRIOR_MAX_MM = 40.0


def depth_prior_targets(actor: Actor) -> Tuple[np.ndarray, np.ndarray]:
  """(V,) mm closest-point tissue depth of the actor's bone meshes, (V,) bool where the depth
  prior uses it: trusted vertices (A.1) with bone behind the skin, at most DEPTH_PRIOR_MAX_MM."""
  _, depth = depths_lib.closest_bone_fields(actor)
  mask = np.asarray(actor.trusted, bool) & (depth > 0.0) & (depth <= DEPTH_PRIOR_MAX_MM)
  return np.where(mask, depth, 0.0).astype(np.float32), mask


def make_learning_data(actor: Actor, constraints: SparseConstraints,
                       depth_prior: bool = False) -> LearningData:
  """The arrays learning reads; `depth_prior`: also the depth prior's (`depth_prior_targets`)."""
  if constraints.count == 0:
    raise ValueError(f'{actor.source or actor.name}: no sparse anatomical constraint was found '
                     '(check the bones lie under the skin and the trusted mask)')
  return LearningData(
      template=jnp.asarray(actor.neutral), shapes=jnp.asarray(actor.shapes),
      partner=jnp.asarray(actor.symmetry), plane=jnp.asarray(actor.mirror_plane),
      unconstrained=jnp.asarray(~constraints.vertex_mask()),
      constraints=ConstraintTargets.of(constraints),
      fold_faces=jnp.asarray(actor.faces, jnp.int32),
      fold_normal=jnp.asarray(skin_fold_normals(actor.neutral, actor.faces)),
      **{k: None if v is None else jnp.asarray(v)
         for k, v in zip(('jaw_probe', 'jaw_target'), jaw_prior_targets(actor))},
      **({k: jnp.asarray(v) for k, v in zip(('prior_depth', 'prior_mask'),
                                             depth_prior_targets(actor))} if depth_prior else {}))


def model_spec(config: ml_collections.ConfigDict, actor: Actor) -> aim.AIMSpec:
  m = config.model
  return aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes, hidden=m.hidden,
                       depth=m.depth, activation=m.activation, w0=m.w0, sine=m.sine,
                       expression_hidden=m.expression_hidden, bone_scale=m.bone_scale,
                       thickness_scale=m.thickness_scale, delta_scale=m.delta_scale,
                       layout=m.layout, anatomy_activation=m.anatomy_activation,
                       anatomy_w0=m.anatomy_w0)


@dataclasses.dataclass(frozen=True)
class OptimizerSettings(train_loop.AdamSettings):
  """The learning optimiser's settings: the network rate and schedule of `AdamSettings`, own
  rates for the jaw rotations and translations, Adam's b2 and gradient clipping."""
  jaw_rotation_lr: float
  jaw_translation_lr: float
  adam_b2: float
  grad_clip_norm: float

  def optimizer(self) -> optax.GradientTransformation:
    """Adam with a warmup + cosine schedule; jaw rotations and translations get their own rates.

    Gradients are clipped to `grad_clip_norm` (global norm; 0 disables) before Adam: without it
    SIREN training at the paper's 2e-3 occasionally spikes and kills the thickness network (seen
    on the synthetic demo at step ~900).
    """
    def adam(lr):
      return optax.adam(self.schedule(lr), b2=self.adam_b2)

    def label(params):
      labels = jax.tree_util.tree_map(lambda _: 'networks', params)
      labels['jaw'] = {'rot6d': 'jaw_rotation', 'translation': 'jaw_translation'}
      return labels

    transform = optax.multi_transform(
        {'networks': adam(self.learning_rate), 'jaw_rotation': adam(self.jaw_rotation_lr),
         'jaw_translation': adam(self.jaw_translation_lr)}, label)
    if self.grad_clip_norm:
      return optax.chain(optax.clip_by_global_norm(self.grad_clip_norm), transform)
    return transform


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The learning optimiser of a config (see `OptimizerSettings.optimizer`)."""
  return OptimizerSettings.from_config(config).optimizer()


def regulariser_positions(key: jax.Array, count: int, size: int) -> jnp.ndarray:
  """(min(size, count),) int distinct positions in a batch of `count` points, drawn at random
  (size 0 or >= count: every position, in order). The regularisers read these, so that a
  full-batch run regularises every vertex over its steps rather than the first `size` by index
  (before issue 11, the lower quarter of the demo face only)."""
  return sampling.random_subset(key, count, size)


POINTS_AXIS = 'points'


def point_mesh() -> Optional[Mesh]:
  """A 1-D mesh of every device along `POINTS_AXIS`, or None with a single device."""
  devices = jax.devices()
  return Mesh(np.asarray(devices), (POINTS_AXIS,)) if len(devices) > 1 else None


def _split_points(x: jnp.ndarray, axis: int = 0) -> jnp.ndarray:
  """Inside a jitted step: asks XLA to split x's `axis` (query points) across the devices.

  Data parallelism over query points: every network evaluation and loss term on these points
  runs on each device's share, the parameters stay replicated, and XLA sums the gradients
  across devices. Uneven splits are allowed (XLA pads). A no-op with one device.
  """
  mesh = point_mesh()
  if mesh is None:
    return x
  spec = [None] * x.ndim
  spec[axis] = POINTS_AXIS
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(*spec)))


def loss_fn(params: Dict, data: LearningData, key: jax.Array, spec: aim.AIMSpec,
            weights: Dict[str, float], batch_size: int, constraint_batch: int,
            symmetry_batch: int, skinning_jitter_mm: float, fold_margin: float = 0.0,
            shard_points: bool = False):
  """L_Model on one batch. Returns (total, dict of the unweighted terms).

  `weights` maps each term ('reconstruction', 'neutral', 'anatomy', 'anatomy_normal', 'thickness',
  'thickness_small', 'thickness_smooth', 'bone_smooth', 'normal_smooth', 'fold', 'depth_prior',
  'skinning', 'skinning_smooth', 'symmetry', 'bone_symmetry', 'expression_small', 'jaw_prior')
  to its weight. A term is computed only when its weight (or, for the constraint group 'anatomy',
  'anatomy_normal', 'thickness', 'skinning', the weight of any term of the group, which share
  one network evaluation) is non-zero; 'jaw_prior' also needs per-shape jaws in `data`,
  'depth_prior' the prior's depths.

  Batches: `batch_size` vertices (0 or >= V: every vertex) for the reconstruction and the
  small-thickness prior; `constraint_batch` constraints; and the regularisers (L_Sym and the
  smoothness terms) on a fresh random `symmetry_batch` of the batch's points every step (0: the
  whole batch), so that over the steps they act on every vertex. The fold penalty reads every
  skin triangle when the batch is every vertex, else `symmetry_batch` random triangles (their
  corners evaluated for it).

  With `shard_points` and several devices, the query points (the batch, the constraints and the
  regularisers' points) are split across the devices (`_split_points`); the result is the same
  as on one device, to float tolerance.
  """
  split = _split_points if shard_points else (lambda x, axis=0: x)
  num_vertices = data.template.shape[0]
  k_batch, k_constraint, k_jitter, k_sub, k_fold = jax.random.split(key, 5)
  full_batch = not batch_size or batch_size >= num_vertices
  index = sampling.random_subset(k_batch, num_vertices, batch_size)  # Every vertex when full.
  points = split(data.template[index])
  target = split(data.shapes[:, index], axis=1)
  fields = aim.anatomy(params, points, spec, aim.NETWORKS)
  rotation, translation = aim.jaw_transforms(params)
  predicted = aim.reconstruct_from_fields(fields, rotation, translation, spec)
  terms = {'reconstruction': losses.reconstruction(predicted, target)}
  if weights.get('neutral', 0.0):  # The neutral once more (ours): s0 = B + D N, shape 0.
    terms['neutral'] = losses.reconstruction(predicted[:1], target[:1])
  if weights.get('expression_small', 0.0):
    terms['expression_small'] = losses.expression_small(fields['expression'])
  if weights.get('jaw_prior', 0.0) and data.jaw_probe is not None:
    terms['jaw_prior'] = losses.jaw_prior(rotation, translation, data.jaw_probe,
                                          data.jaw_target, jnp.asarray(spec.pivot, jnp.float32))

  uses = lambda *names: any(weights.get(n, 0.0) for n in names)
  c = data.constraints
  num_constraints = c.points.shape[0]
  if uses('anatomy', 'anatomy_normal', 'thickness', 'skinning'):
    c_index = sampling.random_subset(k_constraint, num_constraints, constraint_batch)
    c_fields = aim.anatomy(params, split(c.points[c_index]), spec, aim.ANATOMY_NETWORKS)
    terms['anatomy'] = losses.bone_points(c_fields['bone'], c.bone[c_index])
    terms['anatomy_normal'] = losses.bone_normals(c_fields['normal'], c.normal[c_index])
    terms['thickness'] = losses.thickness_match(c_fields['thickness'], c.thickness[c_index])
    terms['skinning'] = losses.skinning_prior(c_fields['skinning'], c.bone_id[c_index])
  if uses('thickness_small'):
    terms['thickness_small'] = losses.thickness_small(fields['thickness'],
                                                      data.unconstrained[index])
  if uses('depth_prior') and data.prior_depth is not None:
    terms['depth_prior'] = losses.depth_prior(fields['thickness'], data.prior_depth[index],
                                              data.prior_mask[index])

  # The regularisers' points: a random subset of the batch, drawn anew every step.
  position = regulariser_positions(k_sub, index.shape[0], symmetry_batch)
  sub = split(index[position])
  own = {k: v[position] for k, v in fields.items() if k in aim.ANATOMY_NETWORKS}
  smooth = (('skinning', 'skinning_smooth'), ('thickness', 'thickness_smooth'),
            ('bone', 'bone_smooth'), ('normal', 'normal_smooth'))
  names = tuple(name for name, term in smooth if uses(term))
  if names:
    jitter = skinning_jitter_mm * jax.random.normal(k_jitter, (sub.shape[0], 3))
    nearby = aim.anatomy(params, data.template[sub] + jitter, spec, names)
    if uses('skinning_smooth'):
      terms['skinning_smooth'] = losses.skinning_smoothness(own['skinning'], nearby['skinning'])
    if uses('thickness_smooth'):
      terms['thickness_smooth'] = losses.thickness_smoothness(own['thickness'],
                                                              nearby['thickness'])
    if uses('bone_smooth'):
      behind = aim.anatomy(params, data.template[sub] - jitter, spec, ('bone',))['bone']
      terms['bone_smooth'] = losses.bone_smoothness(own['bone'], nearby['bone'], behind)
    if uses('normal_smooth'):
      terms['normal_smooth'] = losses.normal_smoothness(own['normal'], nearby['normal'])
  if uses('symmetry', 'bone_symmetry'):
    partner = data.partner[sub]
    valid = partner >= 0
    mirrored = aim.anatomy(params, data.template[jnp.maximum(partner, 0)], spec,
                           aim.ANATOMY_NETWORKS if uses('symmetry') else ('bone',))
    if uses('symmetry'):
      terms['symmetry'] = losses.symmetry(own, mirrored, data.plane, valid)
    if uses('bone_symmetry'):
      terms['bone_symmetry'] = losses.bone_symmetry(own['bone'], mirrored['bone'], data.plane,
                                                    valid)
  if uses('fold'):
    if full_batch:  # Positions are vertex ids: every triangle, no extra evaluation.
      triangles = fields['bone'][data.fold_faces]
      skin_normal = data.fold_normal
    else:
      num_faces = data.fold_faces.shape[0]
      picked = sampling.random_subset(k_fold, num_faces, symmetry_batch)
      corners = data.fold_faces[picked]
      triangles = aim.anatomy(params, data.template[corners.reshape(-1)], spec,
                              ('bone',))['bone'].reshape(-1, 3, 3)
      skin_normal = data.fold_normal[picked]
    terms['fold'] = losses.fold(triangles, skin_normal, fold_margin)
  total = sum(weights.get(name, 0.0) * value for name, value in terms.items())
  return total, terms


def loss_weights(config: ml_collections.ConfigDict) -> Dict[str, float]:
  """The weight of every term, with the Table 3 switches applied (a switched-off term is 0)."""
  w, use = config.loss.weights, config.loss.use
  weights = {
      'reconstruction': w.reconstruction,
      # Ours: the neutral's reconstruction once more (L_R gives it 1/S of its weight).
      'neutral': w.neutral if use.neutral else 0.0,
      'anatomy': w.anatomy if use.anatomy else 0.0,
      'anatomy_normal': w.anatomy_normal if use.anatomy else 0.0,
      'thickness': w.thickness if use.thickness else 0.0,
      'thickness_small': w.thickness_small if use.thickness else 0.0,
      'thickness_smooth': w.thickness_smooth if use.thickness else 0.0,
      # Ours (issue 11), not in the paper: a smooth, unfolded anatomy between the constraints.
      'bone_smooth': w.bone_smooth if use.anatomy_smooth else 0.0,
      'normal_smooth': w.normal_smooth if use.anatomy_smooth else 0.0,
      'fold': w.fold if use.fold else 0.0,
      # Ours, not in the paper: toward the bone meshes' closest-point depth where trusted.
      'depth_prior': w.depth_prior,
      'skinning': w.skinning if use.skinning else 0.0,
      'skinning_smooth': w.skinning_smooth if use.skinning else 0.0,
      'symmetry': w.symmetry if use.symmetry else 0.0,
      # Ours: the bone map alone held to its mirror image (losses.bone_symmetry).
      'bone_symmetry': w.bone_symmetry if use.bone_symmetry else 0.0,
      'expression_small': w.expression_small if use.expression_small else 0.0,
      # Optional (configs/learn_ict.py): acts only on actors with per-shape jaws (shape_jaws).
      'jaw_prior': w.jaw_prior,
  }
  return {k: float(v) for k, v in weights.items()}


TrainState = train_loop.TrainState


def create_state(config, spec: aim.AIMSpec, optimizer) -> TrainState:
  """The initial state: `aim.init` from the config seed, the optimiser's initial state."""
  return train_loop.create_state(aim.init(jax.random.PRNGKey(config.seed), spec), optimizer)


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """Everything static about a learning step (hashable: the jit cache key)."""
  spec: aim.AIMSpec
  weights: Tuple[Tuple[str, float], ...]
  batch_size: int
  constraint_batch: int
  symmetry_batch: int
  skinning_jitter_mm: float
  fold_margin: float
  optimizer: OptimizerSettings
  seed: int
  shard_points: bool = False

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, spec: aim.AIMSpec) -> 'StepSettings':
    t = config.train
    for name in ('batch_size', 'constraint_batch', 'symmetry_batch'):
      if int(t[name]) < 0:
        raise ValueError(f'train.{name} must be >= 0 (0: all), got {t[name]}')
    return cls(spec=spec, weights=tuple(sorted(loss_weights(config).items())),
               batch_size=int(t.batch_size), constraint_batch=int(t.constraint_batch),
               symmetry_batch=int(t.symmetry_batch),
               skinning_jitter_mm=float(config.loss.skinning_jitter_mm),
               fold_margin=float(config.loss.fold_margin),
               optimizer=OptimizerSettings.from_config(config), seed=int(config.seed),
               # Data parallel over query points whenever there are several devices; a config
               # may add train.shard_points = False to keep to one. Not a field of
               # configs/learn.py: a new field would change every ablation job's hash.
               shard_points=bool(t.get('shard_points', True)) and jax.device_count() > 1)


def _one_step(state: TrainState, data: LearningData, settings: StepSettings):
  key = jax.random.fold_in(jax.random.PRNGKey(settings.seed + 1), state.step)
  (total, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, data, key, settings.spec, dict(settings.weights), settings.batch_size,
      settings.constraint_batch, settings.symmetry_batch, settings.skinning_jitter_mm,
      settings.fold_margin, settings.shard_points)
  state = train_loop.apply_gradients(state, grads, settings.optimizer.optimizer())
  return state, dict(terms, total=total)


@functools.partial(jax.jit, static_argnames=('settings',), donate_argnums=(0,))
def train_step(state: TrainState, data: LearningData, settings: StepSettings):
  """One L_Model step: (state, data) -> (next state, dict of the unweighted terms + 'total').
  The batch of step i is drawn from fold_in(seed + 1, i)."""
  return _one_step(state, data, settings)


@functools.partial(jax.jit, static_argnames=('settings', 'count'), donate_argnums=(0,))
def train_block(state: TrainState, data: LearningData, settings: StepSettings, count: int):
  """`count` steps in one `lax.scan`: (next state, the terms summed over the block)."""
  step = functools.partial(_one_step, data=data, settings=settings)
  return train_loop.scan_steps(step, count)(state)


def make_train_step(config, spec: aim.AIMSpec) -> Callable:
  """`train_step(state, data) -> (state, terms)` for a config (compiled once per settings; the
  optimiser is the config's, `make_optimizer`)."""
  settings = StepSettings.from_config(config, spec)
  return lambda state, data: train_step(state, data, settings)


def reconstruction_error_mm(params, spec: aim.AIMSpec, actor: Actor) -> np.ndarray:
  """(S, V) per-vertex Euclidean error (mm) of the reconstructed learning shapes."""
  shapes = aim.evaluate_chunked(params, actor.neutral, spec)['shapes']
  return np.linalg.norm(shapes - actor.shapes, axis=-1)


def train(config: ml_collections.ConfigDict, actor: Actor, constraints: SparseConstraints,
          workdir: Optional[str], log: Optional[Callable[[str], None]] = print,
          stop_after: Optional[int] = None):
  """Learns an AIM model; resumes from the newest readable checkpoint in `workdir/checkpoints`.

  The shared run machinery (`train_loop.run`) writes `metrics.jsonl` and checkpoints every
  `config.train.checkpoint_every` steps and at the end (or on SIGTERM / Ctrl-C), and stops on a
  non-finite loss without writing the bad state. Every `train.eval_every` steps (at log steps)
  the reconstruction error (mm) of the learning shapes is added to the record.

  Args:
    stop_after: stop (with a checkpoint) after this global step; for tests of resuming.
  Returns:
    (params, spec, history) with history a list of the logged metric dicts of this run.
  """
  t = config.train
  spec = model_spec(config, actor)
  settings = StepSettings.from_config(config, spec)
  options = train_loop.loop_options(t)
  data = make_learning_data(actor, constraints,
                            depth_prior=dict(settings.weights)['depth_prior'] > 0)
  state = create_state(config, spec, settings.optimizer.optimizer())
  if settings.shard_points:  # Parameters and data on every device (checkpoints restore so).
    replicated = NamedSharding(point_mesh(), PartitionSpec())
    state, data = jax.device_put((state, data), replicated)

  def on_log(step, state, record):
    if step % t.eval_every and step != options.num_steps:
      return None
    error = reconstruction_error_mm(state.params, spec, actor)
    record['reconstruction_mm'] = float(error[:, actor.region].mean())
    return f'reconstruction {record["reconstruction_mm"]:.4f} mm'

  block = options.steps_per_call
  state, history = train_loop.run(
      state, lambda s: train_step(s, data, settings), options, workdir=workdir, log=log,
      hooks=train_loop.Hooks(on_log=on_log), stop_after=stop_after,
      block_fn=lambda s: train_block(s, data, settings, block))
  return state.params, spec, history

