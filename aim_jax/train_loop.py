"""Run machinery shared by the learning and fitting loops.

One place owns what every long optax loop of the project needs: the train state, the
warmup-cosine schedule, orbax checkpoints (save, restore, fall back past an unreadable step,
never keep a non-finite state), the metrics log, SIGTERM / Ctrl-C handling, progress lines and
resuming. A loop (`learning.train`, `fitting.fit.fit_frames`) builds its jitted step and calls
`run`:

  state, history = train_loop.run(state, step_fn, options, workdir=..., log=print)

`step_fn(state) -> (state, terms)` advances one step; `terms` is a dict of scalar losses (with
'total'). With `options.steps_per_call > 1` the loop calls `scan_steps`' jitted block of steps
(`jax.lax.scan`) instead, so the host dispatches once per block.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp

from aim_jax import distributed, metrics_log
from aim_jax import progress as progress_lib

Log = Optional[Callable[[str], None]]
StepFn = Callable[[Any], Tuple[Any, Dict[str, jnp.ndarray]]]


class StopRequested(Exception):
  """Raised by a run after SIGTERM or Ctrl-C, once its checkpoint is written."""


class Diverged(Exception):
  """Raised when a loss term or the parameters become non-finite; nothing of that state is
  written, and the last finite checkpoint is kept."""


class CheckpointError(Exception):
  """No checkpoint of a run could be read."""


@flax.struct.dataclass
class TrainState:
  """The state of an optax loop: the step count, the parameters and the optimiser state."""
  step: jnp.ndarray
  params: Any
  opt_state: optax.OptState


def create_state(params, optimizer: optax.GradientTransformation) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params))


def apply_gradients(state: TrainState, grads, optimizer: optax.GradientTransformation
                    ) -> TrainState:
  """One optimiser update: the next state."""
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  return TrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                    opt_state=opt_state)


def warmup_cosine(peak: float, warmup_steps: int, num_steps: int, final_fraction: float
                  ) -> optax.Schedule:
  """Linear warmup from 0 to `peak` over `warmup_steps`, then cosine decay to
  `peak * final_fraction` at `num_steps`."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak, warmup_steps=warmup_steps,
      decay_steps=max(num_steps, warmup_steps + 1), end_value=peak * final_fraction)


@dataclasses.dataclass(frozen=True)
class LoopOptions:
  """How `run` drives a loop (all counts in steps)."""
  num_steps: int
  log_every: int = 100
  checkpoint_every: int = 1000
  max_checkpoints: int = 3
  steps_per_call: int = 1  # > 1: blocks of steps in one jitted lax.scan (see `scan_steps`).
  unit: str = 'steps'

  def __post_init__(self):
    for name in ('num_steps', 'log_every', 'checkpoint_every', 'max_checkpoints',
                 'steps_per_call'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'train.{name} must be a whole number >= 1, got {value!r}')


@dataclasses.dataclass(frozen=True)
class AdamSettings:
  """Adam on a warmup-cosine schedule (hashable: an optimiser is rebuilt from it inside jitted
  steps). The fitting loop's optimiser; learning's extends it."""
  learning_rate: float
  warmup_steps: int
  num_steps: int
  final_lr_fraction: float

  def schedule(self, peak: float) -> optax.Schedule:
    return warmup_cosine(peak, self.warmup_steps, self.num_steps, self.final_lr_fraction)

  def optimizer(self) -> optax.GradientTransformation:
    return optax.adam(self.schedule(self.learning_rate))

  @classmethod
  def from_config(cls, config: Any):
    """From the config's `train` section."""
    return settings_from(cls, config.train)


class SpikeClipState(NamedTuple):
  mean_norm: jnp.ndarray  # () running mean of the (clipped) gradient norms.
  count: jnp.ndarray      # () int32 updates seen.


def clip_spikes(factor: float, decay: float = 0.99) -> optax.GradientTransformation:
  """Scales a gradient whose global norm is above `factor` times the running mean of the norms
  down to that bound; the first gradient passes and starts the mean.

  Unlike a fixed `optax.clip_by_global_norm`, the bound follows the gradients down as a fit
  converges (from ~1e3 at the start of a fit to ~1 late), so it leaves the early steps alone
  and stops the rare late step whose gradient jumps 50-100x, which Adam at a high learning rate
  turns into a jump of the parameters: a dense fit at 6e-3 over 8,000 steps went from 0.07 to
  0.67 mm in one such step and ended at 0.082 mm, against 0.039 with this guard (README).
  """
  def init(params):
    del params
    return SpikeClipState(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

  def update(updates, state, params=None):
    del params
    norm = optax.tree.norm(updates)
    bound = jnp.where(state.count > 0, factor * state.mean_norm, jnp.inf)
    scale = jnp.minimum(1.0, bound / jnp.maximum(norm, 1e-30))
    updates = jax.tree_util.tree_map(lambda u: (u * scale).astype(u.dtype), updates)
    seen = jnp.minimum(norm, bound)
    mean = jnp.where(state.count > 0, decay * state.mean_norm + (1.0 - decay) * seen, norm)
    return updates, SpikeClipState(mean.astype(jnp.float32), state.count + 1)

  return optax.GradientTransformation(init, update)


_SCALARS = {'int': int, 'float': float, 'bool': bool, 'str': str}


def settings_from(cls, section: Any):
  """A frozen settings dataclass `cls` (scalar fields) filled from the config section's fields
  of the same names, converted to the declared types (so it is hashable and jit-static). A field
  with a default may be missing from the section (a config written before the field existed)."""
  values = {}
  for f in dataclasses.fields(cls):
    if f.name in section:
      values[f.name] = _SCALARS[str(f.type)](section[f.name])
    elif f.default is dataclasses.MISSING:
      raise KeyError(f'the config has no {f.name!r}')
  return cls(**values)


def loop_options(train: Any, **overrides) -> LoopOptions:
  """LoopOptions from a config's `train` section (learning or fitting)."""
  fields = {f.name: train[f.name] for f in dataclasses.fields(LoopOptions)
            if f.name in train and f.name != 'unit'}
  fields.update(overrides)
  return LoopOptions(**fields)


# ------------------------------------------------------------------------------------------
# Signals.


class StopSignals:
  """Turns SIGTERM (and SIGINT, Ctrl-C) into a flag checked between steps, so a run stops with a
  checkpoint at the exact step instead of dying mid-write.

  `with StopSignals() as stop:` ... `if stop.requested: ...`. Outside the main thread it installs
  nothing (signals can only be handled there). A second Ctrl-C raises KeyboardInterrupt at once.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = None  # The name of the signal received, or None.
    self._previous = {}

  def __enter__(self):
    for sig in self.SIGNALS:
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # Not the main thread.
        break
    return self

  def _handle(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self._previous = {}


# ------------------------------------------------------------------------------------------
# Finiteness.


@jax.jit
def _all_finite(tree) -> jnp.ndarray:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def is_finite(tree) -> bool:
  """True when every floating-point leaf of the pytree is finite."""
  return bool(_all_finite(tree))


def non_finite_terms(values: Dict[str, float]) -> List[str]:
  return sorted(k for k, v in values.items() if not math.isfinite(v))


# ------------------------------------------------------------------------------------------
# Checkpoints.


def _restore_target(leaf) -> jax.ShapeDtypeStruct:
  """Shape, dtype and placement a leaf is restored to: its own sharding, or (for an abstract
  leaf, e.g. from `jax.eval_shape`) this process's first device, not the device the checkpoint
  was written from (another process's in a multi-process run)."""
  target = ocp.utils.to_shape_dtype_struct(leaf)
  if getattr(target, 'sharding', None) is None:
    target = jax.ShapeDtypeStruct(target.shape, target.dtype,
                                  sharding=jax.sharding.SingleDeviceSharding(
                                      jax.local_devices()[0]))
  return target


class Checkpoints:
  """Orbax checkpoints of one run in `workdir/checkpoints`.

  `restore` falls back from an unreadable newest step to the newest readable one (the unreadable
  step is moved to `workdir/checkpoints_unreadable/`, not deleted); `save` refuses a non-finite
  state, so rotation (`max_to_keep`) never drops the last finite checkpoint for a diverged one.
  """

  def __init__(self, workdir: str, max_to_keep: int = 3, log: Log = print,
               process_local: bool = False):
    """`process_local`: this process alone reads (or writes) them, e.g. a learned model every
    process of a multi-process run loads for itself; otherwise every process of the run takes
    part in each save and restore (orbax's multi-host checkpointing of sharded states)."""
    self.workdir = workdir
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self.max_to_keep, self.log = max_to_keep, log
    self.process_local = process_local
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    multiprocessing = ocp.options.MultiprocessingOptions()
    if self.process_local:  # Orbax does not create the folder for a subset of processes.
      os.makedirs(self.directory, exist_ok=True)
      me = jax.process_index()
      multiprocessing = ocp.options.MultiprocessingOptions(
          primary_host=me, active_processes={me}, barrier_sync_key_prefix=f'local{me}')
    return ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=self.max_to_keep, create=not self.process_local,
            multiprocessing_options=multiprocessing))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> List[int]:
    return sorted(self._manager.all_steps())

  def _set_aside(self, step: int):
    if distributed.is_primary():  # Every process found it unreadable; one moves it.
      aside = os.path.join(self.workdir, 'checkpoints_unreadable')
      os.makedirs(aside, exist_ok=True)
      target = os.path.join(aside, str(step))
      if os.path.exists(target):
        shutil.rmtree(target)
      os.replace(os.path.join(self.directory, str(step)), target)
    if not self.process_local:
      distributed.barrier(f'checkpoint {step} set aside')
    self._manager.close()
    self._manager = self._open()

  def restore(self, like) -> Tuple[Any, Optional[int]]:
    """(state, step) of the newest readable checkpoint, or (like, None) when there is none.

    `like` is a state of the right structure (its values are not used).
    """
    abstract = jax.tree_util.tree_map(_restore_target, like)
    steps = self.all_steps()
    for step in reversed(steps):
      try:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as err:  # pylint: disable=broad-except
        # Orbax raises many kinds on a damaged step (truncated files, missing metadata, shape
        # mismatches); a structure mismatch fails on every step and is reported below.
        problem = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if self.log:
          self.log(f'checkpoint at step {step} in {self.directory} is unreadable ({problem}); '
                   'trying an older one')
        last_error = problem
        self._set_aside(step)
        continue
      if not is_finite(state):
        if self.log:
          self.log(f'checkpoint at step {step} in {self.directory} holds non-finite values; '
                   'trying an older one')
        last_error = 'non-finite values'
        self._set_aside(step)
        continue
      return state, step
    if steps:
      raise CheckpointError(f'{self.directory}: no readable checkpoint (steps {steps}, set '
                            f'aside in checkpoints_unreadable/; last problem: {last_error})')
    return like, None

  def save(self, step: int, state, force: bool = False) -> bool:
    """Saves `state` at `step` unless it is not finite (then returns False)."""
    if not is_finite(state):
      return False
    if step in self._manager.all_steps():
      return True
    self._manager.save(step, args=ocp.args.StandardSave(state), force=force)
    return True

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# ------------------------------------------------------------------------------------------
# Blocks of steps.


def scan_steps(step_fn: StepFn, count: int) -> Callable:
  """`count` steps of `step_fn` as one function: state -> (state, summed terms).

  Wrap the result in `jax.jit` (or call it inside a jitted function) so the block is one
  dispatch: the terms are summed on the device and the host sees them once per block.
  """
  def block(state):
    def body(carry, _):
      state, sums = carry
      state, terms = step_fn(state)
      return (state, jax.tree_util.tree_map(jnp.add, sums, terms)), None
    _, terms_shape = jax.eval_shape(step_fn, state)
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), terms_shape)
    (state, sums), _ = jax.lax.scan(body, (state, zeros), None, length=count)
    return state, sums
  return block


# ------------------------------------------------------------------------------------------
# The driver.


@dataclasses.dataclass
class Hooks:
  """Optional callbacks of `run`.

  on_log(step, state, record): at every logged step; may add entries to `record` (e.g. an
    evaluation) and return a note for the progress line (or None).
  """
  on_log: Optional[Callable[[int, Any, Dict], Optional[str]]] = None


def _sum_host(sums, terms):
  return terms if sums is None else jax.tree_util.tree_map(jnp.add, sums, terms)


def run(state, step_fn: StepFn, options: LoopOptions, workdir: Optional[str] = None,
        log: Log = print, hooks: Optional[Hooks] = None, stop_after: Optional[int] = None,
        block_fn: Optional[Callable] = None) -> Tuple[Any, List[Dict]]:
  """Runs `step_fn` from `state` (or the workdir's newest readable checkpoint) to
  `options.num_steps`.

  Args:
    state: the initial state (any pytree with an integer `step` field, e.g. `TrainState`).
    step_fn: state -> (state, terms), jitted; terms: dict of scalars with 'total'.
    options: step counts and intervals.
    workdir: where `checkpoints/` and `metrics.jsonl` go; None runs in memory (no resume).
    hooks: optional callbacks (see `Hooks`).
    stop_after: stop with a checkpoint after this step (tests of resuming).
    block_fn: jitted `scan_steps(step_fn, options.steps_per_call)`, used for whole blocks when
      `options.steps_per_call > 1` (built here when not given).
  Returns:
    (final state, the metric records logged by this run).
  Raises:
    StopRequested: after SIGTERM / Ctrl-C, once the checkpoint is written.
    Diverged: a loss term or the state became non-finite (nothing of it is written).
    CheckpointError: the workdir has checkpoints and none is readable.
  """
  hooks = hooks or Hooks()
  checkpoints = metrics_path = None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    if distributed.is_primary():  # In a multi-process run, process 0 writes the metrics.
      metrics_path = metrics_log.path_in(workdir)
    checkpoints = Checkpoints(workdir, options.max_checkpoints, log)
  history: List[Dict] = []
  stopped = None
  try:
    with StopSignals() as stop:
      if checkpoints is not None:
        state, latest = checkpoints.restore(state)
        if metrics_path:
          metrics_log.truncate(metrics_path, latest or 0)
        if latest is not None and log:
          log(f'resumed from checkpoint at step {latest} in {workdir}')
      start = int(state.step)
      end = options.num_steps if stop_after is None else min(options.num_steps, stop_after)
      block = options.steps_per_call
      if block > 1 and block_fn is None:
        block_fn = jax.jit(scan_steps(step_fn, block))
      meter = progress_lib.Progress(total=options.num_steps, start=start, log=log,
                                    unit=options.unit)
      last_good = start
      sums, count, step = None, 0, start
      while step < end:
        # Next event: a log point, a checkpoint or the end.
        boundary = min(end, (step // options.log_every + 1) * options.log_every,
                       (step // options.checkpoint_every + 1) * options.checkpoint_every)
        if block > 1 and boundary - step >= block:
          state, terms = block_fn(state)
          step += block
          count += block
        else:
          state, terms = step_fn(state)
          step += 1
          count += 1
        sums = _sum_host(sums, terms)
        logged = step % options.log_every == 0 or step == end
        saving = checkpoints is not None and step % options.checkpoint_every == 0
        if logged:
          means = {k: float(v) / count for k, v in jax.device_get(sums).items()}
          bad = non_finite_terms(means)
          if bad:
            raise Diverged(f'non-finite {", ".join(bad)} between steps {last_good} and {step}; '
                           + _kept(checkpoints))
          record = meter.update(step, means)
          if hooks.on_log is not None:
            note = hooks.on_log(step, state, record)
            if note:
              meter.note(note)
          meter.flush()
          history.append(record)
          if metrics_path:
            metrics_log.append(metrics_path, record)
          sums, count = None, 0
          last_good = step
        if saving:
          _save_finite(checkpoints, step, state)
        if _stop_agreed(stop, at_boundary=logged or saving or step >= end):
          stopped = stop.requested or 'a signal to another process'
          break
      if checkpoints is not None and int(state.step) != (checkpoints.latest_step() or 0):
        _save_finite(checkpoints, int(state.step), state, force=True)
  finally:
    if checkpoints is not None:
      checkpoints.close()
  if stopped:
    where = f'; checkpoint in {workdir}, rerun the same command to resume' if workdir else ''
    raise StopRequested(f'stopped at step {int(state.step)} ({stopped}){where}')
  return state, history


def _stop_agreed(stop: StopSignals, at_boundary: bool) -> bool:
  """Whether to stop now. One process stops at once on a signal; several stop together, at the
  next log or checkpoint step, when any of them was signalled (each would otherwise wait for the
  others at the next collective)."""
  if distributed.process_count() == 1:
    return bool(stop.requested)
  return at_boundary and distributed.any_process(bool(stop.requested))


def _save_finite(checkpoints: Checkpoints, step: int, state, force: bool = False):
  """Saves the state; Diverged (nothing written) when it is not finite."""
  if not checkpoints.save(step, state, force=force):
    raise Diverged(f'non-finite parameters at step {step}; ' + _kept(checkpoints))


def _kept(checkpoints: Optional[Checkpoints]) -> str:
  if checkpoints is None:
    return 'nothing was written (lower the learning rate?)'
  latest = checkpoints.latest_step()
  if latest is None:
    return 'no checkpoint was written (lower the learning rate?)'
  return (f'the last finite checkpoint (step {latest}) in {checkpoints.directory} is kept '
          '(lower the learning rate?)')
