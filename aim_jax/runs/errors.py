"""How the command-line drivers end: one line for every error a user can cause or meet.

`with one_line_errors():` around a run turns the library's user-facing errors (bad input, a
refused or busy workdir, a diverged run, unreadable checkpoints, a full or read-only disk) into
`SystemExit('error: <one line>')` (exit code 1) and a requested stop (SIGTERM, Ctrl-C) into
`SystemExit('stopped at step N ...; rerun ... to resume')`, instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import sys
from typing import Callable, Sequence

from absl import app, flags
from ml_collections import config_flags

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


def _config_problem(err: BaseException) -> str:
  """One line out of config_flags' multi-line load errors (the OS error when there is one)."""
  lines = [line.strip() for line in str(err).splitlines() if line.strip()]
  for line in lines:
    if 'No such file' in line or 'Errno' in line or 'rror:' in line:
      return line
  return lines[0] if lines else type(err).__name__


def _override_problem(err: BaseException, name: str = 'config') -> str:
  """The one line for `--<name>.*` overrides that name a field the config does not have."""
  overrides = [a.split('=')[0] for a in sys.argv[1:] if a.startswith(f'--{name}.')]
  return (f'error: a config override names a field the config does not have '
          f'({", ".join(overrides) or "?"}: {str(err).strip(chr(34) + chr(39))})')


def define_config_file(name: str, default: str, help_string: str):
  """`config_flags.DEFINE_config_file` (locked), ending the program with one line when an
  override names a field the config does not have. Without `--<name>` on the command line the
  default file is loaded here, at definition, with the overrides applied (with it, the file
  loads in `run_main`, which says the same)."""
  try:
    return config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
  except (AttributeError, KeyError, TypeError) as err:
    if not any(a.startswith(f'--{name}.') for a in sys.argv[1:]):
      raise  # The default file itself is broken: not the user's override.
    raise SystemExit(_override_problem(err, name)) from None


def run_main(main: Callable, config_flags_names: Sequence[str] = ('config',)):
  """`app.run(main)` with one-line errors for the configuration too: a missing or broken config
  file, or a `--config.*` override naming a field the config does not have."""
  parsed = []

  def checked(argv):
    parsed.append(True)
    for name in config_flags_names:
      if name in flags.FLAGS:
        try:
          flags.FLAGS[name].value.keys()  # A config that failed to load raises here.
        except Exception as err:  # noqa: BLE001 (config_flags raises many kinds)
          raise SystemExit(f'error: --{name}: {_config_problem(err)}') from None
    return main(argv)

  try:
    app.run(checked)
  except SyntaxError as err:
    if parsed:
      raise
    raise SystemExit(f'error: {err.filename}:{err.lineno}: {err.msg} (a config file)') from None
  except (AttributeError, KeyError, TypeError) as err:
    if parsed:
      raise
    raise SystemExit(_override_problem(err)) from None
  except Exception as err:  # noqa: BLE001 (config files can raise anything while loading)
    if parsed:
      raise
    raise SystemExit(f'error: loading the configuration failed: {_config_problem(err)}'
                     ) from None
