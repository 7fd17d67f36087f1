"""Workdirs: usable folders, one run at a time, one identity."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from aim_jax import workdir as workdir_lib
from aim_jax.data import synthetic_performance


def test_a_file_or_a_read_only_folder_is_refused(tmp_path):
  file = tmp_path / 'file'
  file.write_text('x')
  with pytest.raises(workdir_lib.WorkdirError, match='is a file, not a folder'):
    workdir_lib.check_usable(str(file))
  if os.geteuid() != 0:  # root writes anywhere.
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(workdir_lib.WorkdirError, match='not writable'):
      workdir_lib.check_usable(str(folder))


def test_a_live_lock_is_refused_and_names_the_pid(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    (tmp_path / workdir_lib.LOCK).write_text(json.dumps(
        {'pid': holder.pid, 'host': __import__('socket').gethostname(), 'command': 'learn'}))
    with pytest.raises(workdir_lib.WorkdirError, match=f'in use by process {holder.pid}'):
      with workdir_lib.Lock(str(tmp_path), log=None):
        pass
  finally:
    holder.kill()
    holder.wait()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  (tmp_path / workdir_lib.LOCK).write_text(json.dumps(
      {'pid': dead.pid, 'host': __import__('socket').gethostname(), 'command': 'old'}))
  lines = []
  with workdir_lib.Lock(str(tmp_path), log=lines.append):
    held = json.loads((tmp_path / workdir_lib.LOCK).read_text())
    assert held['pid'] == os.getpid()
  assert 'taking over the lock' in lines[0] and str(dead.pid) in lines[0]
  assert not (tmp_path / workdir_lib.LOCK).exists()


def test_lock_is_reentrant_in_one_process(tmp_path):
  with workdir_lib.Lock(str(tmp_path), log=None):
    with workdir_lib.Lock(str(tmp_path), log=None):
      pass
    assert (tmp_path / workdir_lib.LOCK).exists()
  assert not (tmp_path / workdir_lib.LOCK).exists()


def test_identity_is_recorded_then_checked(tmp_path):
  folder = str(tmp_path / 'run')
  first = {'kind': 'learn', 'actor': workdir_lib.content_hash(np.arange(3)),
           'config': {'model': {'hidden': 128}}}
  workdir_lib.claim(folder, first, log=None)
  (tmp_path / 'run' / 'result.txt').write_text('good')
  workdir_lib.claim(folder, first, log=None)  # Same inputs: fine.
  changed = dict(first, actor=workdir_lib.content_hash(np.arange(4)),
                 config={'model': {'hidden': 64}})
  with pytest.raises(workdir_lib.WorkdirError, match=r'other actor, config.model.hidden; .*'
                     '--restart'):
    workdir_lib.claim(folder, changed, log=None)
  assert (tmp_path / 'run' / 'result.txt').read_text() == 'good'
  lines = []
  workdir_lib.claim(folder, changed, restart=True, log=lines.append)
  assert not (tmp_path / 'run' / 'result.txt').exists()
  aside = [p for p in tmp_path.iterdir() if p.name.startswith('run.replaced-')]
  assert len(aside) == 1 and (aside[0] / 'result.txt').read_text() == 'good'
  assert 'moved to' in lines[0]
  assert workdir_lib.read_identity(folder) == changed


def test_content_hash_sees_values_shapes_and_dtypes():
  a = np.arange(6, dtype=np.float32)
  assert workdir_lib.content_hash(a) == workdir_lib.content_hash(a.copy())
  assert workdir_lib.content_hash(a) != workdir_lib.content_hash(a.reshape(2, 3))
  assert workdir_lib.content_hash(a) != workdir_lib.content_hash(a.astype(np.float64))
  assert workdir_lib.content_hash(a) != workdir_lib.content_hash(a + 1e-3)


def test_content_hash_of_frames_played_on_demand_is_that_of_the_array(actor):
  frames = synthetic_performance.stream_performance(actor, num_frames=130, seed=1).frames
  assert workdir_lib.content_hash('truth', frames) == workdir_lib.content_hash(
      'truth', np.asarray(frames))
