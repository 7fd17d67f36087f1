"""Several processes, one run: JAX's multi-controller runtime (`jax.distributed`).

Every process runs the same program on its own devices; `jax.devices()` then lists the devices of
all processes, so a mesh over them (the fit's frame axis, `fitting/fit.py`) splits the work across
hosts and XLA's collectives (NCCL on GPUs, gloo on CPUs) combine the shared gradients. Process 0
(the primary) alone writes files and prints; the others compute and wait at barriers.

  # Two processes on one machine (each sees its own CPU):
  python experiments/fit_sequence.py ... --distributed --coordinator=localhost:12355 \
      --num_processes=2 --process_id=0 &
  python experiments/fit_sequence.py ... --distributed --coordinator=localhost:12355 \
      --num_processes=2 --process_id=1
  # A SLURM allocation: one task per node (or per GPU), everything detected from SLURM:
  srun python experiments/fit_sequence.py ... --distributed

Every function here is also right in a single process (then barriers and agreement are no-ops),
so library code calls them unconditionally.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils


class DistributedError(Exception):
  """The processes of a run disagree or another process failed first."""


def initialize(coordinator: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None):
  """Joins this process to a multi-process run; call before any JAX computation.

  Args:
    coordinator: 'host:port' of process 0's coordination service; None lets JAX detect the
      cluster (SLURM, Open MPI, Kubernetes, Cloud TPU).
    num_processes, process_id: this run's size and this process's rank (None: detected).
  CPU processes exchange their collectives over gloo (XLA's CPU collectives); GPUs use NCCL.
  """
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                             process_id=process_id)
  # The first collective sets up the CPU collectives' context, which waits only 30 s for the
  # other processes; here they have just joined together, later they may be minutes apart.
  barrier('joined')


def process_count() -> int:
  return jax.process_count()


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def barrier(name: str):
  """Waits until every process has reached the barrier `name` (no-op in one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """True on every process when `flag` is true on any of them (a collective: every process must
  call it at the same point)."""
  if jax.process_count() == 1:
    return bool(flag)
  flags = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32))
  return bool(np.any(flags))


def gather(tree: Any) -> Any:
  """The tree as numpy on every process: arrays split over the devices of several processes are
  gathered whole (a collective in a multi-process run)."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return multihost_utils.process_allgather(tree, tiled=True)


def share(items: Sequence[Any]) -> list:
  """This process's share of independent work items: every n-th item from the i-th (process i
  of n; all of them in a single process)."""
  return list(items[jax.process_index()::jax.process_count()])


def check_together(error: Optional[BaseException], what: str):
  """Raises on every process when any process failed at `what` (its own error where it failed,
  DistributedError elsewhere), so no process waits forever at the next collective."""
  failed = any_process(error is not None)
  if error is not None:
    raise error
  if failed:
    raise DistributedError(f'another process failed at {what}; its message says why')


@contextlib.contextmanager
def entered_by_primary(make: Callable[[], ContextManager], what: str) -> Iterator[None]:
  """`with entered_by_primary(lambda: workdir.Lock(path), 'locking path'):` process 0 alone
  enters the context (a workdir's lock, for every process of the run); when entering fails there,
  every process raises (`check_together`) instead of waiting at the next collective."""
  with contextlib.ExitStack() as stack:
    error = None
    if is_primary():
      try:
        stack.enter_context(make())
      except Exception as err:  # pylint: disable=broad-except
        error = err
    check_together(error, what)
    yield
