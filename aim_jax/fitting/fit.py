"""The fitting loop: per-frame codes and F_T / F_W learned with optax against frozen AIM fields.

`fit_frames` fits one chunk of frames jointly (shared F_T and F_W, one code per frame): a jitted
Adam step on a random subset of the constrained points each step, resumable from orbax
checkpoints. With several devices the frame axis is sharded across them (`jax.sharding`), so the
same call scales from one CPU to a multi-GPU host, and to several hosts (`aim_jax/distributed.py`:
the mesh spans every process's devices, process 0 writes the files). `fit_sequence` splits a long
sequence into chunks, fits them one after another (each starting from the previous chunk's
networks), keeps finished chunks on disk and returns every frame evaluated at every vertex.
`fit_sequence_chunks` is the same without holding the sequence: it returns the chunk files
(`fitting/chunks.py`), so memory is bounded by a chunk whatever the number of frames.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable, Dict, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from aim_jax import distributed, geometry, sampling, train_loop
from aim_jax.fitting import baselines, coefficient_field, jaw_prior, mesh_topology, objectives
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import chunks as chunks_lib
from aim_jax.fitting import model as model_lib
from aim_jax.fitting.basis import ModelBasis
from aim_jax.fitting.targets import SurfacePoints, TargetSet, interpolate
from aim_jax.models import aim

TERMS = ('dense', 'markers', 'landmarks', 'coefficients', 'temporal', 'coefficient_smooth',
         'coefficient_shrink', 'jaw_blend')
FIELD_TERMS = ('coefficient_smooth', 'coefficient_shrink')  # Need source['topology'].


@dataclasses.dataclass(frozen=True)
class LossOptions:
  """Static loss settings (from `config.loss` and `config.train`)."""
  weights: tuple  # ((term, weight), ...) over TERMS.
  points_per_step: int = 0
  robust: str = 'none'
  robust_scale: float = 1.0
  optimize_camera: bool = False
  regularized_points: int = 256
  field_points: int = 128
  field_kinds: tuple = ('markers',)


def loss_options(config: ml_collections.ConfigDict) -> LossOptions:
  """The static loss settings; a robust_scale of 0 is three times the stated noise
  (`config.noise`: px when landmarks are fitted, else mm)."""
  loss = config.loss
  scale = float(loss.robust_scale)
  if scale <= 0 and loss.robust != 'none':
    noise = config.noise
    scale = 3.0 * max(float(noise.markers_mm), float(noise.landmarks_px))
    if scale <= 0:
      raise ValueError('loss.robust_scale is 0 (from the noise) but config.noise states none')
  return LossOptions(weights=tuple((t, float(loss[t])) for t in TERMS),
                     points_per_step=int(config.train.points_per_step), robust=loss.robust,
                     robust_scale=scale, optimize_camera=loss.optimize_camera,
                     regularized_points=int(loss.regularized_points),
                     field_points=int(loss.field_points),
                     field_kinds=kinds_of(config, 'field_kinds'))


def kinds_of(config: ml_collections.ConfigDict, key: str) -> tuple:
  """A comma-separated list of target kinds in `config.loss` as a sorted tuple: `field_kinds`
  (those the coefficient-field terms act on) or `jaw_kinds` (those `jaw_blend` acts on)."""
  text = str(config.loss.get(key, 'markers'))
  return tuple(sorted(k.strip() for k in text.split(',') if k.strip()))


def field_terms_apply(kinds, targets) -> bool:
  """Whether the coefficient-field terms act on these targets: every target kind is one of
  `kinds` (with dense targets, or 1,000 landmarks, they only cost accuracy)."""
  return set(targets) <= set(kinds)


def fit_spec(config: ml_collections.ConfigDict, num_coefficients: int,
             variant: Optional[str] = None) -> model_lib.FitSpec:
  m = config.model
  return model_lib.FitSpec(num_coefficients=num_coefficients, code_dim=m.code_dim,
                           hidden=m.hidden, depth=m.depth, activation=m.activation, w0=m.w0,
                           variant=variant or m.variant, rank=m.rank, head_pose=m.head_pose,
                           translation_scale=m.translation_scale,
                           code_init_std=m.code_init_std)


@dataclasses.dataclass(frozen=True)
class OptimizerSettings(train_loop.AdamSettings):
  """Fitting's optimiser: Adam on a warmup-cosine schedule, after `train_loop.clip_spikes` with
  `spike_clip` (0: off) times the running gradient norm."""
  spike_clip: float = 0.0

  def __post_init__(self):
    if not (self.spike_clip == 0 or self.spike_clip > 1):
      raise ValueError('train.spike_clip must be 0 (off) or > 1 (times the running gradient '
                       f'norm; at or below it most steps would be scaled down), got '
                       f'{self.spike_clip}')

  def optimizer(self) -> optax.GradientTransformation:
    adam = super().optimizer()
    return optax.chain(train_loop.clip_spikes(self.spike_clip), adam) if self.spike_clip else adam


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  return OptimizerSettings.from_config(config).optimizer()


FitState = train_loop.TrainState


def _subsample(targets: TargetSet, key: jax.Array, count: int):
  """A random subset of `count` constrained points (all of them when count is 0 or larger)."""
  total = targets.points.count
  if not count or count >= total:
    return targets.points, targets.values, targets.visible
  index = sampling.random_subset(key, total, count)
  points = SurfacePoints(vertices=targets.points.vertices[index],
                         weights=targets.points.weights[index])
  return points, targets.values[:, index], targets.visible[:, index]


def _basis_at(source: Dict, vertex_ids: jnp.ndarray, aim_spec: Optional[aim.AIMSpec]
              ) -> ModelBasis:
  """The AIM fields at some vertices: from the cache, or (uncached) through the networks."""
  if aim_spec is None:
    return source['basis'].take(vertex_ids)
  return basis_lib.uncached_fields(jax.lax.stop_gradient(source['aim']), aim_spec,
                                   source['basis'].points[vertex_ids])


def make_loss_fn(spec: model_lib.FitSpec, options: LossOptions,
                 aim_spec: Optional[aim.AIMSpec] = None) -> Callable:
  """loss(params, source, targets, valid, key) -> (total, terms) for one step.

  Args (of the returned function):
    source: {'basis': ModelBasis} (cached), plus {'aim': AIM params} for the uncached path
      (when aim_spec is given the fields are recomputed through the networks every step), and
      {'topology': mesh_topology.Topology} when a coefficient-field term is weighted (they act
      only when every target kind is in `options.field_kinds`: `field_terms_apply`), and
      {'jaw_prior': jaw_prior.JawPrior, 'jaw_blend': (F, S-1) each frame's GBS coefficients}
      for the `jaw_blend` term (skipped without them; `fit_source` adds them when the term is
      weighted and every target kind is in `loss.jaw_kinds`).
    targets: {kind: TargetSet} over the same F frames as params['codes'].
    valid: (F,) 1 for real frames, 0 for padding (excluded from the regularisers).
  """
  weights = dict(options.weights)

  def loss_fn(params, source, targets, valid, key):
    frame = model_lib.transforms(params, spec)
    num_frames = params['codes'].shape[0]
    terms = {}
    coefficient_sets = []
    for i, kind in enumerate(sorted(targets)):
      target = targets[kind]
      points, values, visible = _subsample(target, jax.random.fold_in(key, i),
                                           options.points_per_step)
      k = points.vertices.shape[1]
      basis = _basis_at(source, points.vertices.reshape(-1), aim_spec)
      offsets, w = model_lib.expression_offsets(params, basis, spec, options.regularized_points)
      x = model_lib.compose_offsets(basis, offsets, frame)
      x = interpolate(points, x.reshape(num_frames, -1, k, 3))
      offset = None
      if kind == 'landmarks' and options.optimize_camera:
        offset = (params['camera']['rot6d'], params['camera']['translation'])
      terms[kind] = objectives.data_term(x, target, visible, values, options.robust,
                                         options.robust_scale, offset)
      coefficient_sets.append(w)
    w = jnp.concatenate(coefficient_sets, axis=1)
    terms['coefficients'] = objectives.coefficient_magnitude(w, valid)
    terms['temporal'] = objectives.temporal_smoothness(w, frame['raw'], valid)
    if (field_terms_apply(options.field_kinds, targets)
        and any(weights[name] for name in FIELD_TERMS)):
      topology = source['topology']
      ids = mesh_topology.sample_vertices(topology, jax.random.fold_in(key, len(targets)),
                                              options.field_points)
      terms.update(coefficient_field.regularisers(params, spec, source['basis'].coords,
                                                  topology, ids, valid))
    if weights['jaw_blend'] and 'jaw_blend' in source:
      terms['jaw_blend'] = jaw_prior.blend_term(source['jaw_prior'], frame['jaw_rotation'],
                                                frame['jaw_translation'], source['jaw_blend'],
                                                valid)
    total = sum(weights[name] * value for name, value in terms.items())
    terms['total'] = total
    return total, terms

  return loss_fn


def _one_step(state: FitState, source, targets, valid, base_key, spec: model_lib.FitSpec,
              options: LossOptions, optim: OptimizerSettings,
              aim_spec: Optional[aim.AIMSpec]):
  key = jax.random.fold_in(base_key, state.step)
  loss_fn = make_loss_fn(spec, options, aim_spec)
  (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, source, targets, valid, key)
  return train_loop.apply_gradients(state, grads, optim.optimizer()), terms


_STATIC = ('spec', 'options', 'optim', 'aim_spec')


@functools.partial(jax.jit, static_argnames=_STATIC)
def fit_step(state: FitState, source, targets, valid, base_key, spec: model_lib.FitSpec,
             options: LossOptions, optim: OptimizerSettings,
             aim_spec: Optional[aim.AIMSpec] = None):
  """One fitting step: (next state, terms). Compiled once per static settings and shapes, so
  every chunk of a sequence and every method with the same shapes reuse one compilation."""
  return _one_step(state, source, targets, valid, base_key, spec, options, optim, aim_spec)


@functools.partial(jax.jit, static_argnames=_STATIC + ('count',))
def fit_block(state: FitState, source, targets, valid, base_key, spec: model_lib.FitSpec,
              options: LossOptions, optim: OptimizerSettings,
              aim_spec: Optional[aim.AIMSpec] = None, count: int = 1):
  """`count` fitting steps in one `lax.scan`: (next state, terms summed over the block)."""
  step = lambda s: _one_step(s, source, targets, valid, base_key, spec, options, optim, aim_spec)
  return train_loop.scan_steps(step, count)(state)


def make_step(spec: model_lib.FitSpec, options: LossOptions, optim: OptimizerSettings,
              aim_spec: Optional[aim.AIMSpec] = None) -> Callable:
  """step(state, source, targets, valid, base_key) -> (state, terms), i.e. `fit_step` with the
  settings bound."""
  return functools.partial(fit_step, spec=spec, options=options, optim=optim,
                           aim_spec=aim_spec)


def init_params(config, spec: model_lib.FitSpec, num_frames: int,
                networks: Optional[Dict] = None) -> Dict:
  params = model_lib.init(jax.random.PRNGKey(config.seed), spec, num_frames, networks)
  if config.loss.optimize_camera:
    params['camera'] = {'rot6d': jnp.asarray(geometry.IDENTITY_6D),
                        'translation': jnp.zeros(3, jnp.float32)}
  return params


def frame_sharding(num_frames: int):
  """(padded frame count, sharding of frame-major arrays, replicated sharding), or None when
  there is only one device. The mesh spans the devices of every process of a multi-process run
  (`aim_jax/distributed.py`)."""
  devices = jax.devices()
  if len(devices) < 2:
    return None
  mesh = Mesh(np.asarray(devices), ('frames',))
  padded = -(-num_frames // len(devices)) * len(devices)
  return padded, NamedSharding(mesh, PartitionSpec('frames')), NamedSharding(mesh,
                                                                              PartitionSpec())


def _pad_frames(targets: Dict[str, TargetSet], padded: int) -> Dict[str, TargetSet]:
  """Pads every target set to `padded` frames with invisible copies of its last frame."""
  out = {}
  for kind, t in targets.items():
    extra = padded - t.num_frames
    values = jnp.concatenate([t.values, jnp.repeat(t.values[-1:], extra, axis=0)])
    visible = jnp.concatenate([t.visible, jnp.zeros((extra,) + t.visible.shape[1:],
                                                    t.visible.dtype)])
    out[kind] = t.replace(values=values, visible=visible)
  return out


def _shard_state(state: FitState, frames, replicated) -> FitState:
  """Codes (and their Adam moments) split over devices along frames; the rest replicated."""
  def place(path, leaf):
    names = [getattr(p, 'key', getattr(p, 'name', None)) for p in path]
    return jax.device_put(leaf, frames if 'codes' in names and leaf.ndim else replicated)
  return jax.tree_util.tree_map_with_path(place, state)


def _shard_targets(targets, frames, replicated):
  return {kind: t.replace(values=jax.device_put(t.values, frames),
                          visible=jax.device_put(t.visible, frames),
                          points=jax.device_put(t.points, replicated),
                          camera=(None if t.camera is None
                                  else jax.device_put(t.camera, replicated)))
          for kind, t in targets.items()}


def fit_frames(config: ml_collections.ConfigDict, spec: model_lib.FitSpec, source: Dict,
               targets: Dict[str, TargetSet], workdir: Optional[str] = None,
               log: Optional[Callable[[str], None]] = print, networks: Optional[Dict] = None,
               aim_spec: Optional[aim.AIMSpec] = None, stop_after: Optional[int] = None,
               num_steps: Optional[int] = None, callback: Optional[Callable] = None):
  """Fits F frames jointly. Resumes from `workdir/checkpoints` when it holds one.

  Args:
    source: {'basis': ModelBasis} (plus {'aim': params} with aim_spec for the uncached path).
    targets: {kind: TargetSet}, all with the same F frames.
    networks: F_T / F_W parameters to start from instead of the initialisation.
    stop_after: stop (with a checkpoint) after this step; for resume tests.
    callback: called as callback(step, params) at every logged step (for convergence curves).
  Returns:
    (params with codes for the F frames, history of logged metric dicts).
  """
  num_frames = next(iter(targets.values())).num_frames
  if any(t.num_frames != num_frames for t in targets.values()):
    raise ValueError('all target kinds must cover the same frames')
  options = loss_options(config)
  weighted = [n for n, w in options.weights if n in FIELD_TERMS and w]
  if weighted and field_terms_apply(options.field_kinds, targets) and 'topology' not in source:
    raise ValueError(f'loss.{weighted[0]} is weighted but the fit was given no mesh topology')
  optim = OptimizerSettings.from_config(config)
  loop = train_loop.loop_options(config.train, num_steps=int(num_steps or config.train.num_steps))
  base_key = jax.random.PRNGKey(config.seed + 1)

  # Several processes always split the frames (the alternative is each fitting all of them).
  shard = config.train.shard_frames or distributed.process_count() > 1
  sharding = frame_sharding(num_frames) if shard else None
  padded = num_frames if sharding is None else sharding[0]
  params = init_params(config, spec, num_frames, networks)
  valid = jnp.ones(padded, jnp.float32)
  if padded != num_frames:
    # Padding frames copy the last frame's code, see nothing and are left out of the
    # regularisers, so a sharded fit computes what an unsharded one does.
    targets = _pad_frames(targets, padded)
    if 'jaw_blend' in source:
      blend = source['jaw_blend']
      source = {**source, 'jaw_blend': jnp.concatenate(
          [blend, jnp.repeat(blend[-1:], padded - num_frames, axis=0)])}
    params['codes'] = jnp.concatenate(
        [params['codes'], jnp.repeat(params['codes'][-1:], padded - num_frames, axis=0)])
    valid = valid.at[num_frames:].set(0.0)
  state = train_loop.create_state(params, optim.optimizer())
  if sharding is not None:
    state = _shard_state(state, sharding[1], sharding[2])
    targets = _shard_targets(targets, sharding[1], sharding[2])
    source = jax.device_put(source, sharding[2])
    valid = jax.device_put(valid, sharding[1])

  settings = dict(spec=spec, options=options, optim=optim, aim_spec=aim_spec)
  hooks = train_loop.Hooks(
      on_log=None if callback is None else lambda step, state, record: callback(step,
                                                                                state.params))
  state, history = train_loop.run(
      state, lambda s: fit_step(s, source, targets, valid, base_key, **settings), loop,
      workdir=workdir, log=log, hooks=hooks, stop_after=stop_after,
      block_fn=lambda s: fit_block(s, source, targets, valid, base_key, **settings,
                                   count=loop.steps_per_call))
  params = distributed.gather(state.params)
  params['codes'] = params['codes'][:num_frames]
  return params, history


@functools.partial(jax.jit, static_argnames=('spec',))
def _estimate_block(params: Dict, basis: ModelBasis, spec: model_lib.FitSpec):
  x, w, frame = model_lib.estimate(params, basis, spec)
  frame = {k: v for k, v in frame.items() if k != 'raw'}
  return {'frames': x, 'coefficients': w, **frame}


def evaluate_frames(params: Dict, spec: model_lib.FitSpec, basis: ModelBasis,
                    frame_chunk: int = 16) -> Dict[str, np.ndarray]:
  """Every fitted frame at every basis vertex, in chunks of frames (bounded memory).

  Returns numpy: 'frames' (F, V, 3) mm, 'coefficients' (F, V, S-1), 'codes' (F, D),
  'jaw_rotation' (F, 3, 3), 'jaw_translation' (F, 3) mm (+ 'head_rotation', 'head_translation').
  """
  codes = np.asarray(params['codes'])
  num_frames = codes.shape[0]
  pieces = []
  for start in range(0, num_frames, frame_chunk):
    block = codes[start:start + frame_chunk]
    pad = frame_chunk - block.shape[0] if num_frames > frame_chunk else 0
    if pad:
      block = np.concatenate([block, np.repeat(block[-1:], pad, axis=0)])
    out = jax.device_get(_estimate_block({**params, 'codes': jnp.asarray(block)}, basis, spec))
    pieces.append({k: v[:block.shape[0] - pad] for k, v in out.items()})
  result = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
  result['codes'] = codes
  return result


def fit_source(basis: ModelBasis, topology: Optional[mesh_topology.Topology] = None,
               jaw: Optional[jaw_prior.JawModel] = None,
               config: Optional[ml_collections.ConfigDict] = None,
               targets: Optional[Dict[str, TargetSet]] = None) -> Dict:
  """The `source` of `fit_frames` for these targets: the basis, with the mesh topology when
  given, and when the `jaw_blend` term acts on them (weighted, every kind in
  `loss.jaw_kinds`) the jaw prior and each frame's blend, the GBS coefficients solved on the
  targets (`baselines.fit_gbs` with `config.gbs`)."""
  source = {'basis': basis}
  if topology is not None:
    source['topology'] = topology
  if (jaw is not None and config is not None and targets is not None
      and float(config.loss.get('jaw_blend', 0.0))
      and field_terms_apply(kinds_of(config, 'jaw_kinds'), targets)):
    source['jaw_prior'] = jaw.prior
    source['jaw_blend'] = jnp.asarray(baselines.fit_gbs(jaw.gbs_basis, targets,
                                                        ridge=float(config.gbs.ridge),
                                                        iterations=int(config.gbs.iterations)))
  return source


def _chunk_targets(targets: Dict[str, TargetSet], start: int, stop: int):
  return {kind: t.frames(slice(start, stop)) for kind, t in targets.items()}


def chunk_ranges(num_frames: int, chunk_frames: int) -> Sequence[tuple]:
  chunk_frames = num_frames if chunk_frames <= 0 else chunk_frames
  return [(s, min(s + chunk_frames, num_frames)) for s in range(0, num_frames, chunk_frames)]


def _save_networks(chunk_dir: str, networks: Dict):
  path = os.path.join(chunk_dir, 'networks.msgpack')
  with open(path + '.tmp', 'wb') as f:
    f.write(flax.serialization.msgpack_serialize(
        jax.tree_util.tree_map(np.asarray, flax.serialization.to_state_dict(networks))))
  os.replace(path + '.tmp', path)


def _load_networks(chunk_dir: str, config, spec: model_lib.FitSpec) -> Dict:
  """F_T / F_W (and camera) parameters a finished chunk ended with."""
  template = {k: v for k, v in init_params(config, spec, 1).items() if k != 'codes'}
  with open(os.path.join(chunk_dir, 'networks.msgpack'), 'rb') as f:
    state = flax.serialization.msgpack_restore(f.read())
  return flax.serialization.from_state_dict(template, state)


def fit_sequence_chunks(config: ml_collections.ConfigDict, spec: model_lib.FitSpec,
                        basis: ModelBasis, targets: Dict[str, TargetSet], workdir: str,
                        log: Optional[Callable[[str], None]] = print,
                        topology: Optional[mesh_topology.Topology] = None,
                        jaw: Optional[jaw_prior.JawModel] = None,
                        finish: Optional[Callable[[Dict, Dict], Dict]] = None
                        ) -> chunks_lib.Chunks:
  """Fits a whole sequence chunk by chunk in `workdir`; returns the chunks' `evaluate_frames`
  results as files (workdir/chunk_XXX/result.npz), holding one chunk in memory at a time.
  With `finish`, a chunk's results are finish(params, chunk targets) instead (the
  frame-by-frame refinement, `refinement.refine_frames`).

  `topology` (the template mesh's neighbours) is needed when a coefficient-field term
  (`loss.coefficient_smooth`, `loss.coefficient_shrink`) is weighted; `jaw` (the model's
  `jaw_prior.JawModel`) by the `loss.jaw_blend` term.

  A chunk whose results file exists is not refitted; an unfinished chunk resumes from its
  checkpoint. Each chunk starts from the previous chunk's F_T and F_W (temporal smoothness acts
  within a chunk).
  """
  num_frames = next(iter(targets.values())).num_frames
  ranges = chunk_ranges(num_frames, config.train.chunk_frames)
  os.makedirs(workdir, exist_ok=True)
  networks = None
  for index, (start, stop) in enumerate(ranges):
    chunk_dir = os.path.join(workdir, f'chunk_{index:03d}')
    done = os.path.join(chunk_dir, 'result.npz')
    if os.path.exists(done):
      networks = _load_networks(chunk_dir, config, spec)
      continue
    if log and len(ranges) > 1:
      log(f'chunk {index + 1}/{len(ranges)}: frames {start}-{stop - 1}')
    chunk_targets = _chunk_targets(targets, start, stop)
    source = fit_source(basis, topology, jaw, config, chunk_targets)
    params, _ = fit_frames(config, spec, source, chunk_targets, workdir=chunk_dir, log=log,
                           networks=networks)
    networks = {k: v for k, v in params.items() if k not in ('codes',)}
    result = (finish(params, chunk_targets) if finish else
              evaluate_frames(params, spec, basis))
    if 'camera' in params:
      result['camera_rot6d'] = np.asarray(params['camera']['rot6d'])[None]
      result['camera_translation'] = np.asarray(params['camera']['translation'])[None]
    if distributed.is_primary():  # Every process holds the same result; one writes it.
      _save_networks(chunk_dir, networks)
      tmp = os.path.join(chunk_dir, 'result.tmp.npz')
      np.savez(tmp, **result)
      os.replace(tmp, done)
    distributed.barrier(f'{chunk_dir} written')
  return chunks_lib.Chunks(tuple(ranges), tuple(chunks_lib.result_path(workdir, index)
                                                for index in range(len(ranges))))


def fit_sequence(config: ml_collections.ConfigDict, spec: model_lib.FitSpec, basis: ModelBasis,
                 targets: Dict[str, TargetSet], workdir: str,
                 log: Optional[Callable[[str], None]] = print,
                 topology: Optional[mesh_topology.Topology] = None,
                 jaw: Optional[jaw_prior.JawModel] = None) -> Dict[str, np.ndarray]:
  """`fit_sequence_chunks` with every chunk's results concatenated in memory: `evaluate_frames`
  of every frame of the sequence."""
  return fit_sequence_chunks(config, spec, basis, targets, workdir, log, topology, jaw).load()
