"""A run's folder: usable, held by one process at a time, and holding one run's results.

- `check_usable(path)`: a folder that exists or can be made, and can be written to (one-line
  `WorkdirError` otherwise: a path that is a file, a read-only folder).
- `Lock(path)`: `with Lock(workdir):` refuses a second run on a busy workdir, naming the PID that
  holds it; a lock left by a dead process is taken over with a warning.
- Identity: every workdir records what produced it (`identity.json`: content hashes of the
  inputs and the config values that decide the result). A rerun with other inputs is refused
  with one line naming what changed, unless the caller asks to start over, which moves the old
  contents aside (`<workdir>.replaced-<time>`), never deletes them.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import socket
import sys
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np

from aim_jax import files

IDENTITY = 'identity.json'
LOCK = '.lock'


class WorkdirError(Exception):
  """A workdir that cannot be used for this run; the message is one line naming it."""


def check_usable(path: str):
  """Makes `path` (and parents) if missing; raises WorkdirError if it is not a writable folder."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(f'{path}: is a file, not a folder')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as err:
    raise WorkdirError(f'{path}: cannot be created ({err.strerror})') from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise WorkdirError(f'{path}: is not writable')


# ------------------------------------------------------------------------------------------
# Lock.


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class Lock:
  """An exclusive lock on a workdir for the life of a run (`with Lock(workdir, log):`).

  The lock file holds the PID, host and command of its holder. A lock whose PID is dead (on this
  host) is stale and taken over with a warning; a live one raises WorkdirError. Re-entrant
  within one process (nested runs on the same folder).
  """

  _held: Dict[str, int] = {}

  def __init__(self, workdir: str, log: Optional[Callable[[str], None]] = print):
    self.workdir = os.path.abspath(workdir)
    self.path = os.path.join(self.workdir, LOCK)
    self.log = log

  def _holder(self) -> Dict:
    try:
      with open(self.path) as f:
        return json.load(f)
    except (OSError, ValueError):
      return {}

  def __enter__(self):
    if self._held.get(self.workdir):
      self._held[self.workdir] += 1
      return self
    check_usable(self.workdir)
    me = {'pid': os.getpid(), 'host': socket.gethostname(), 'command': ' '.join(sys.argv)[:300]}
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = self._holder()
        pid, host = holder.get('pid'), holder.get('host')
        if isinstance(pid, int) and (host != me['host'] or _alive(pid)):
          where = '' if host == me['host'] else f' on {host}'
          raise WorkdirError(f'{self.workdir}: in use by process {pid}{where} '
                             f'({holder.get("command", "?")}); wait for it to end or stop it'
                             ) from None
        if self.log:
          self.log(f'warning: {self.workdir}: taking over the lock of process {pid}, which is '
                   'no longer running')
        try:
          os.remove(self.path)
        except FileNotFoundError:
          pass
        continue
      with os.fdopen(fd, 'w') as f:
        json.dump(me, f)
      self._held[self.workdir] = 1
      return self
    raise WorkdirError(f'{self.workdir}: could not take the lock {self.path}')

  def __exit__(self, *exc):
    self._held[self.workdir] -= 1
    if self._held[self.workdir] == 0:
      del self._held[self.workdir]
      if self._holder().get('pid') == os.getpid():
        os.remove(self.path)


# ------------------------------------------------------------------------------------------
# Identity.


def content_hash(*values) -> str:
  """A short sha256 of arrays, strings and numbers (arrays by dtype, shape and bytes). An
array made a block at a time (`blocks()`, `dtype`, `shape`, as
`synthetic_performance.PerformanceFrames`) is hashed block by block, to the same hash as the
array it makes."""
  digest = hashlib.sha256()
  for value in values:
    if value is None:
      digest.update(b'none')
    elif isinstance(value, (str, bytes)):
      digest.update(value.encode() if isinstance(value, str) else value)
    elif hasattr(value, 'blocks'):
      digest.update(f'{np.dtype(value.dtype)}{tuple(value.shape)}'.encode())
      for block in value.blocks():
        digest.update(np.ascontiguousarray(block, value.dtype).tobytes())
    else:
      array = np.ascontiguousarray(np.asarray(value))
      digest.update(f'{array.dtype}{array.shape}'.encode())
      digest.update(array.tobytes())
  return digest.hexdigest()[:16]


def file_hash(path: str) -> str:
  """sha256 of a file's bytes, or of every file below a folder (names included)."""
  digest = hashlib.sha256()
  paths = [path] if os.path.isfile(path) else sorted(
      os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
  for p in paths:
    digest.update(os.path.relpath(p, path).encode())
    with open(p, 'rb') as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        digest.update(block)
  return digest.hexdigest()[:16]


def _flatten(tree: Mapping, prefix: str = '') -> Dict[str, object]:
  out = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if isinstance(value, Mapping):
      out.update(_flatten(value, name + '.'))
    else:
      out[name] = value
  return out


def changed_keys(old: Mapping, new: Mapping) -> List[str]:
  """Dotted keys whose values differ between two nested dicts (added and removed included)."""
  a, b = _flatten(old), _flatten(new)
  return sorted(k for k in set(a) | set(b) if a.get(k, '<unset>') != b.get(k, '<unset>'))


def read_identity(workdir: str) -> Optional[Dict]:
  path = os.path.join(workdir, IDENTITY)
  if not os.path.exists(path):
    return None
  try:
    return files.read_json(path)
  except (OSError, ValueError):
    raise WorkdirError(f'{path}: unreadable; the workdir cannot be checked') from None


def _has_results(workdir: str) -> bool:
  return os.path.isdir(workdir) and any(
      name not in (LOCK, IDENTITY) for name in os.listdir(workdir))


def _move_aside(workdir: str) -> str:
  """Moves every entry of workdir but its lock into a new sibling `<workdir>.replaced-<time>`."""
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S%f')
  aside = f'{os.path.abspath(workdir).rstrip(os.sep)}.replaced-{stamp}'
  os.makedirs(aside)
  for name in os.listdir(workdir):
    if name != LOCK:
      os.replace(os.path.join(workdir, name), os.path.join(aside, name))
  return aside


def claim(workdir: str, identity: Dict, restart: bool = False,
          log: Optional[Callable[[str], None]] = print, restart_flag: str = 'restart',
          ) -> Dict:
  """Records `identity` in workdir, or checks it against the one already there.

  Args:
    identity: nested dict of json-able values: what produced the results (content hashes of the
      inputs, the config values that decide them, 'kind' of run).
    restart: start over: an existing workdir made with another identity is moved aside to
      `<workdir>.replaced-<UTC time>` (nothing is deleted), then claimed afresh.
    restart_flag: the name the error message tells the user to pass (e.g. 'restart').
  Returns:
    the identity now recorded.
  Raises:
    WorkdirError: the workdir holds results of another identity (names the changed keys).
  """
  check_usable(workdir)
  identity = json.loads(json.dumps(identity))  # Plain json values, as read back later.
  old = read_identity(workdir)
  if old is not None and old != identity:
    changed = changed_keys(old, identity)
    if not restart:
      shown = ', '.join(changed[:6]) + (f' and {len(changed) - 6} more' if len(changed) > 6
                                        else '')
      raise WorkdirError(f'{workdir}: holds a run made with other {shown}; use another '
                         f'workdir, or pass --{restart_flag} to move it aside and start over')
    aside = _move_aside(workdir)
    if log:
      log(f'{workdir}: the previous run (other {", ".join(changed[:6])}) was moved to {aside}')
  elif old is None and restart and _has_results(workdir):
    aside = _move_aside(workdir)
    if log:
      log(f'{workdir}: the previous run was moved to {aside}')
  if old != identity:
    files.write_json(os.path.join(workdir, IDENTITY), identity)
  return identity


@contextlib.contextmanager
def open_run(path: str, identity: Dict, restart: bool = False,
             log: Optional[Callable[[str], None]] = print, restart_flag: str = 'restart'):
  """`with open_run(workdir, identity):` a usable, locked workdir holding this identity's run
  (see `check_usable`, `Lock`, `claim`)."""
  check_usable(path)
  with Lock(path, log):
    claim(path, identity, restart=restart, log=log, restart_flag=restart_flag)
    yield path
