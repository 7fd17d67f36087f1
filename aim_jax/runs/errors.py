"""How the command-line drivers end: one line for every error a user can cause or meet.

`with one_line_errors():` around a run turns the library's user-facing errors (bad input, a
refused or busy workdir, a diverged run, unreadable checkpoints, a full or read-only disk) into
`SystemExit('error: <one line>')` (exit code 1) and a requested stop (SIGTERM, Ctrl-C) into
`SystemExit('stopped at step N ...; rerun ... to resume')`, instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno

from aim_jax import train_loop
from aim_jax import workdir as workdir_lib

# Every library error class is a ValueError (ActorError, TargetError, ModelDirError, EditError,
# RetargetError, MeshFileError) or named here.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, train_loop.Diverged,
               train_loop.CheckpointError, workdir_lib.WorkdirError)


def _os_error_line(err: OSError) -> str:
  where = f'{err.filename}: ' if err.filename else ''
  if err.errno == errno.ENOSPC:
    return f'{where}no space left on the device; the files written before are kept'
  return f'{where}{err.strerror or err}'


@contextlib.contextmanager
def one_line_errors(prefix: str = ''):
  """Runs the block; ends the program with one line on a user-facing error (see module)."""
  try:
    yield
  except train_loop.StopRequested as stop:
    raise SystemExit(str(stop)) from None
  except USER_ERRORS as err:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    raise SystemExit(f'error: {prefix}{text}') from None
  except KeyboardInterrupt:
    raise SystemExit('interrupted') from None
  except OSError as err:
    raise SystemExit(f'error: {_os_error_line(err)}') from None
