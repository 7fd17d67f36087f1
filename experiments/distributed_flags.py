"""Command-line flags that join a run to JAX's multi-controller runtime (aim_jax/distributed.py).

  --distributed                          detect the cluster (SLURM, Open MPI, ...)
  --distributed --coordinator=HOST:PORT --num_processes=N --process_id=I   (set by hand)

Imported by the experiments that can run on several processes (fit_sequence.py, ablate.py).
"""

from absl import flags

from aim_jax import distributed

_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Run as one of several processes (jax.distributed): frames or jobs are '
    'split across them and process 0 writes the outputs. Without --coordinator the cluster is '
    'detected (SLURM, Open MPI).')
_COORDINATOR = flags.DEFINE_string('coordinator', None,
                                   'host:port of process 0 (with --distributed).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'How many processes (with --distributed).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   "This process's rank, 0 to num_processes - 1.")


def initialize():
  """Joins the multi-process run when --distributed is given (call before any JAX work);
  refuses the other three flags without it."""
  manual = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if not _DISTRIBUTED.value:
    if any(v is not None for v in manual):
      raise ValueError('--coordinator, --num_processes and --process_id need --distributed')
    return
  if _NUM_PROCESSES.value is not None and _NUM_PROCESSES.value < 1:
    raise ValueError(f'--num_processes must be >= 1, got {_NUM_PROCESSES.value}')
  distributed.initialize(*manual)
