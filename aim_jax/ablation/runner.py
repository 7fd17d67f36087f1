"""One ablation job: learn a variant with one seed, fit held-out sequences, evaluate.

A job lives in its own folder `<workdir>/runs/<run>/seed_<seed>/`:
  job.json      what the job computes (learning and fitting configs, fits, actor)
  model/        a learn_model.py workdir (checkpoints, summary.json); resumes
  fit_<F>f/     a fit_sequence.py workdir per held-out length F (report.json); resumes
  fields.npz    the learned fields at the neutral's vertices (for the report's renders)
  result.json   written last: what the report reads; its `job_hash` marks the job as done

A rerun skips jobs whose result.json matches their job.json and resumes the others from their
checkpoints. Jobs run one after another in this process, or as subprocesses
(`python -m aim_jax.ablation.runner JOB_DIR`), several at a time, one per GPU where there are
GPUs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import time
from concurrent import futures
from typing import Callable, Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from aim_jax import learning
from aim_jax import metrics_log
from aim_jax import pipeline as learn_pipeline
from aim_jax import progress as progress_lib
from aim_jax.ablation import studies as studies_lib
from aim_jax.data import load_actor_source
from aim_jax.fitting import comparison
from aim_jax.fitting import pipeline as fit_pipeline
from aim_jax.models import aim

Log = Optional[Callable[[str], None]]


@dataclasses.dataclass(frozen=True)
class Job:
  """One (variant, seed) job.

  Attributes:
    run: the variant's name ('full', 'relu', 'no_L_A', 'hidden_64', ...).
    seed: seed of network initialisation, constraint sampling and fitting.
    folder: the job's folder.
    spec: the json-able description written to job.json.
  """
  run: str
  seed: int
  folder: str
  spec: Dict

  @property
  def learning_spec(self) -> Dict:
    """What the job learns and how it fits: the spec without the sequences it fits (fits of
    other lengths and methods add to a finished job's result)."""
    return {k: v for k, v in self.spec.items() if k != 'fits'}

  @property
  def hash(self) -> str:
    """Hash of `learning_spec`."""
    return hashlib.sha256(json.dumps(self.learning_spec, sort_keys=True).encode()).hexdigest()[:16]

  def missing_fits(self, result: Optional[Dict]) -> Dict[str, List[str]]:
    """The fits of job.json that `result` (a result.json dict or None) lacks."""
    if result is None or result.get('job_hash') != self.hash:
      return dict(self.spec['fits'])
    missing = {}
    for frames, methods in self.spec['fits'].items():
      have = result['fits'].get(frames, {}).get('error_mm', {})
      if any(m not in have for m in methods):
        missing[frames] = methods
    return missing


def make_jobs(config: ml_collections.ConfigDict, studies: Sequence[str], actor_source: str,
              workdir: str) -> List[Job]:
  """Every job the studies need, seed by seed, the full model first."""
  overrides = studies_lib.variant_overrides(config, studies)
  needed = studies_lib.fits_needed(config, studies)
  order = list(overrides)
  jobs = []
  # Seed-major, so that an interrupted run leaves whole tables with fewer seeds.
  for (run, seed), fits in sorted(needed.items(), key=lambda kv: (kv[0][1],
                                                                   order.index(kv[0][0]))):
    learn = studies_lib.apply_overrides(config.learn, overrides[run])
    learn.seed = seed
    fit = ml_collections.ConfigDict(config.fit.to_dict())
    fit.seed = seed
    spec = {
        'run': run, 'seed': seed, 'overrides': overrides[run], 'actor': actor_source,
        'targets': config.targets,
        'fits': {str(frames): methods for frames, methods in sorted(fits.items())},
        'learn': learn.to_dict(), 'fit': fit.to_dict(),
        'eval_time_repeats': config.eval_time_repeats,
    }
    jobs.append(Job(run, seed, job_folder(workdir, run, seed), spec))
  return jobs


def job_folder(workdir: str, run: str, seed: int) -> str:
  """The folder of the (run, seed) job under an ablation workdir."""
  return os.path.join(workdir, 'runs', run, f'seed_{seed}')


def _read_result_file(job: Job) -> Optional[Dict]:
  path = os.path.join(job.folder, 'result.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    result = json.load(f)
  return result if result.get('job_hash') == job.hash else None


def read_result(job: Job) -> Optional[Dict]:
  """The job's result.json if it holds every fit of the job's current spec, else None."""
  result = _read_result_file(job)
  return result if result is not None and not job.missing_fits(result) else None


def _changed_keys(old: Dict, new: Dict, prefix: str = '') -> List[str]:
  keys = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      keys += _changed_keys(a, b, f'{prefix}{key}.')
    elif a != b:
      keys.append(f'{prefix}{key}')
  return keys


def write_job(job: Job):
  """Writes job.json; ValueError (one line) if the folder holds a job of another config, whose
  checkpoints must not be resumed with this one."""
  path = os.path.join(job.folder, 'job.json')
  if os.path.exists(path):
    previous = load_job(job.folder)
    if previous.hash != job.hash:
      changed = _changed_keys(previous.learning_spec, job.learning_spec)
      raise ValueError(f'{path}: this workdir holds jobs learned with another config '
                       f'(changed: {", ".join(changed[:6])}); use a new --workdir')
  os.makedirs(job.folder, exist_ok=True)
  _write_json(path, dict(job.spec, job_hash=job.hash))


def _write_json(path: str, data: Dict):
  with open(path + '.tmp', 'w') as f:
    json.dump(data, f, indent=1)
  os.replace(path + '.tmp', path)


def load_job(folder: str) -> Job:
  path = os.path.join(folder, 'job.json')
  try:
    with open(path) as f:
      spec = json.load(f)
  except (OSError, ValueError) as err:
    raise ValueError(f'{path}: cannot read the job ({type(err).__name__}: {err})') from None
  spec.pop('job_hash', None)
  return Job(spec['run'], spec['seed'], folder, spec)


def _evaluation_times(models: Dict[str, tuple], points: np.ndarray, rounds: int
                      ) -> Dict[str, float]:
  """Median wall time (ms) of one jitted evaluation of every shape at `points` (N, 3) mm, for
  each of `models` (label -> (params, spec)); after one warm-up call each, the models are timed
  in turn, round by round, so that load on the machine affects them alike."""
  points = jax.device_put(np.asarray(points, np.float32))
  runs = {}
  for label, (params, spec) in models.items():
    run = jax.jit(lambda p, x, spec=spec: aim.reconstruct(p, x, spec))
    run(params, points).block_until_ready()
    runs[label] = (run, params)
  times = {label: [] for label in runs}
  for _ in range(max(1, rounds)):
    for label, (run, params) in runs.items():
      start = time.perf_counter()
      run(params, points).block_until_ready()
      times[label].append(time.perf_counter() - start)
  return {label: 1e3 * float(np.median(t)) for label, t in times.items()}


def evaluation_ms(params, spec: aim.AIMSpec, points: np.ndarray, repeats: int) -> float:
  """Median wall time (ms) of one jitted evaluation of every shape at `points` (N, 3) mm."""
  return _evaluation_times({'model': (params, spec)}, points, repeats)['model']


def side_by_side_eval_ms(model_dirs: Dict[str, str], points: np.ndarray, rounds: int = 7
                         ) -> Dict[str, float]:
  """Evaluation times (ms) of several learned models (label -> learn_model.py workdir)
  measured side by side in this process (see `_evaluation_times`)."""
  return _evaluation_times({label: learning.load_model(folder)[:2]
                            for label, folder in model_dirs.items()}, points, rounds)


def sequence_targets(fit_config, actor, actor_source: str, num_frames: int, kind: str):
  """The held-out sequence of `num_frames` frames as targets of `kind` and its ground truth."""
  if actor.ground_truth is not None:  # The synthetic actor: its own performance generator.
    config = ml_collections.ConfigDict(fit_config.to_dict())
    config.synthetic.num_frames = num_frames
    config.synthetic.kind = kind
    return fit_pipeline.synthetic_sequence_targets(config, actor)
  truth = comparison.load_performance(actor_source, actor.num_vertices)
  if truth['frames'].shape[0] < num_frames:
    raise ValueError(f'{actor_source}/performance.npz: {truth["frames"].shape[0]} frames, the '
                     f'study needs {num_frames}')
  truth = {k: v[:num_frames] for k, v in truth.items()}
  targets = comparison.performance_targets(actor, truth['frames'], kind,
                                           fit_config.synthetic.num_markers, fit_config.seed)
  return targets, truth


def run_job(job: Job, log: Log = print) -> Dict:
  """Learns, fits and evaluates one job (resuming); writes and returns result.json's dict."""
  spec = job.spec
  learn_config = ml_collections.ConfigDict(spec['learn'])
  fit_config = ml_collections.ConfigDict(spec['fit'])
  actor = load_actor_source(spec['actor'], learn_config)
  model_dir = os.path.join(job.folder, 'model')
  summary_path = os.path.join(model_dir, 'summary.json')
  summary = None
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
    if summary.get('learned_steps') != learn_config.train.num_steps:
      summary = None
  if summary is None:
    summary = learn_pipeline.learn_and_evaluate(learn_config, actor, model_dir, log=log)
    summary['learned_steps'] = learn_config.train.num_steps
    _write_json(summary_path, summary)
  model = fit_pipeline.load_fit_model(model_dir, actor)
  fields = aim.evaluate_chunked(model.params, actor.neutral, model.spec)
  np.savez_compressed(os.path.join(job.folder, 'fields.npz'),
                      **{k: fields[k] for k in ('bone', 'normal', 'thickness', 'skinning')},
                      neutral=fields['shapes'][0])
  rate = metrics_log.median_rate(metrics_log.path_in(model_dir))
  result = {
      'run': job.run, 'seed': job.seed, 'overrides': spec['overrides'],
      'hidden': learn_config.model.hidden, 'activation': learn_config.model.activation,
      'num_params': int(sum(np.size(x) for x in jax.tree_util.tree_leaves(model.params))),
      'eval_ms': evaluation_ms(model.params, model.spec, actor.neutral,
                               spec['eval_time_repeats']),
      'learning_steps_per_s': rate,
      'reconstruction_mm': summary['reconstruction_mm'],
      'anatomy': summary.get('anatomy'), 'jaw': summary.get('jaw'),
      'num_vertices': actor.num_vertices, 'fits': {},
  }
  previous = _read_result_file(job)
  if previous is not None:
    result['fits'] = previous['fits']
  result['job_hash'] = job.hash
  for frames, methods in job.missing_fits(previous).items():
    config = ml_collections.ConfigDict(fit_config.to_dict())
    have = result['fits'].get(frames, {}).get('error_mm', {})
    config.methods = ','.join(sorted(set(methods) | set(have)))
    targets, truth = sequence_targets(config, actor, spec['actor'], int(frames), spec['targets'])
    report = fit_pipeline.fit_and_report(config, model, targets, truth,
                                         os.path.join(job.folder, f'fit_{frames}f'), log=log)
    result['fits'][frames] = {'error_mm': report['error_mm'], 'jaw': report['jaw'],
                              'seconds_per_frame': report['seconds_per_frame_this_run']}
    _write_json(os.path.join(job.folder, 'result.json'), result)
  _write_json(os.path.join(job.folder, 'result.json'), result)
  return result


def _gpu_count() -> int:
  if shutil.which('nvidia-smi') is None:
    return 0
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.SubprocessError):
    return 0
  return sum(1 for line in out.stdout.splitlines() if line.startswith('GPU '))


def _run_subprocess(job: Job, slots: 'queue.Queue[int]', gpus: int) -> int:
  """Runs a job in a subprocess on a free slot (its GPU, when there are GPUs)."""
  slot = slots.get()
  try:
    env = dict(os.environ)
    if gpus:
      env['CUDA_VISIBLE_DEVICES'] = str(slot % gpus)
      env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
    with open(os.path.join(job.folder, 'log.txt'), 'a') as out:
      return subprocess.run([sys.executable, '-m', 'aim_jax.ablation.runner', job.folder],
                            stdout=out, stderr=subprocess.STDOUT, env=env).returncode
  finally:
    slots.put(slot)


def run_jobs(jobs: Sequence[Job], parallel: int = 1, log: Log = print) -> Dict[str, str]:
  """Runs every unfinished job; returns {job folder: 'done' | 'skipped' | 'failed: ...'}.

  parallel: how many jobs run at once (1: in this process, one after another; more: as
    subprocesses, each on its own GPU when there are GPUs; a job's output goes to its log.txt).
  """
  status = {}
  todo = []
  for job in jobs:  # Checks every job folder before anything runs.
    if read_result(job) is not None:
      status[job.folder] = 'skipped'
    else:
      write_job(job)
      todo.append(job)
  if log:
    log(f'{len(jobs)} jobs: {len(jobs) - len(todo)} finished before, {len(todo)} to run')
  start = time.perf_counter()

  def finished(i: int, job: Job, outcome: str):
    status[job.folder] = outcome
    if log:
      elapsed = time.perf_counter() - start
      left = elapsed / (i + 1) * (len(todo) - i - 1)
      log(f'job {i + 1}/{len(todo)} {job.run} seed {job.seed}: {outcome} '
          f'(elapsed {progress_lib.format_duration(elapsed)}, '
          f'left ~{progress_lib.format_duration(left)})')

  if parallel <= 1:
    for i, job in enumerate(todo):
      if log:
        log(f'job {i + 1}/{len(todo)}: {job.run} seed {job.seed} in {job.folder}')
      run_job(job, log=log)
      finished(i, job, 'done')
    return status
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
      finished(n, job, 'done' if code == 0 and read_result(job) is not None else
               f'failed (exit {code}; see {os.path.join(job.folder, "log.txt")})')
  return status


def main(argv):
  if len(argv) != 2:
    raise SystemExit('usage: python -m aim_jax.ablation.runner JOB_DIR')
  run_job(load_job(argv[1]), log=lambda line: print(line, flush=True))


if __name__ == '__main__':
  main(sys.argv)
