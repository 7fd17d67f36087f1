r"""Runs ablation jobs (aim_jax/ablation/runner.py) in this process or as subprocesses, one per
GPU where there are GPUs.

  python experiments/ablate_jobs.py JOB_DIR    # one job, from its job.json (what a subprocess runs)

`run_jobs` is what experiments/ablate.py calls; a job's subprocess output goes to its log.txt.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import time
from concurrent import futures
from typing import Callable, Dict, Optional, Sequence

from aim_jax import progress as progress_lib
from aim_jax.ablation import runner
from aim_jax.runs.errors import one_line_errors

Log = Optional[Callable[[str], None]]


def _gpu_count() -> int:
  if shutil.which('nvidia-smi') is None:
    return 0
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.SubprocessError):
    return 0
  return sum(1 for line in out.stdout.splitlines() if line.startswith('GPU '))


def _run_subprocess(job: runner.Job, slots: 'queue.Queue[int]', gpus: int) -> int:
  """Runs a job in a subprocess on a free slot (its GPU, when there are GPUs)."""
  slot = slots.get()
  try:
    env = dict(os.environ)
    if gpus:
      env['CUDA_VISIBLE_DEVICES'] = str(slot % gpus)
      env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
    with open(os.path.join(job.folder, 'log.txt'), 'a') as out:
      return subprocess.run([sys.executable, os.path.abspath(__file__), job.folder],
                            stdout=out, stderr=subprocess.STDOUT, env=env).returncode
  finally:
    slots.put(slot)


def run_jobs(jobs: Sequence[runner.Job], parallel: int = 1, log: Log = print,
             subprocesses: bool = False) -> Dict[str, str]:
  """Runs every unfinished job; returns {job folder: 'done' | 'skipped' | 'failed: ...'}.

  parallel: how many jobs run at once (1: in this process, one after another; more: as
    subprocesses, each on its own GPU when there are GPUs; a job's output goes to its log.txt).
  subprocesses: run even one job at a time as a subprocess (in a multi-process run, so a job's
    computations stay on this host's devices and a failed job does not stop this process).
  """
  status = {}
  todo = []
  for job in jobs:  # Checks every job folder before anything runs.
    if runner.read_result(job) is not None:
      status[job.folder] = 'skipped'
    else:
      runner.write_job(job)
      todo.append(job)
  if log:
    log(f'{len(jobs)} jobs: {len(jobs) - len(todo)} finished before, {len(todo)} to run')
  start = time.perf_counter()

  def finished(i: int, job: runner.Job, outcome: str):
    status[job.folder] = outcome
    if log:
      elapsed = time.perf_counter() - start
      left = elapsed / (i + 1) * (len(todo) - i - 1)
      log(f'job {i + 1}/{len(todo)} {job.run} seed {job.seed}: {outcome} '
          f'(elapsed {progress_lib.format_duration(elapsed)}, '
          f'left ~{progress_lib.format_duration(left)})')

  if parallel <= 1 and not subprocesses:
    for i, job in enumerate(todo):
      if log:
        log(f'job {i + 1}/{len(todo)}: {job.run} seed {job.seed} in {job.folder}')
      runner.run_job(job, log=log)
      finished(i, job, 'done')
    return status
  parallel = max(1, parallel)
  gpus = _gpu_count()
  slots = queue.Queue()
  for slot in range(parallel):
    slots.put(slot)
  with futures.ThreadPoolExecutor(parallel) as pool:
    running = {pool.submit(_run_subprocess, job, slots, gpus): (i, job)
               for i, job in enumerate(todo)}
    for n, done in enumerate(futures.as_completed(running)):
      i, job = running[done]
      code = done.result()
      finished(n, job, 'done' if code == 0 and runner.read_result(job) is not None else
               f'failed (exit {code}; see {os.path.join(job.folder, "log.txt")})')
  return status


def main(argv):
  if len(argv) != 2:
    raise SystemExit('usage: python experiments/ablate_jobs.py JOB_DIR')
  with one_line_errors():
    job = runner.load_job(argv[1])
    runner.run_job(job, log=lambda line: print(line, flush=True))


if __name__ == '__main__':
  main(sys.argv)
