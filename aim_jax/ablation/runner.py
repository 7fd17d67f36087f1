"""One ablation job: learn a variant with one seed, fit held-out sequences, evaluate.

A job lives in its own folder `<workdir>/runs/<run>/seed_<seed>/`:
  job.json      what the job computes (learning and fitting configs, fits, actor)
  model/        a learn_model.py workdir (checkpoints, summary.json); resumes
  fit_<F>f/     a fit_sequence.py workdir per held-out length F (report.json); resumes
  fields.npz    the learned fields at the neutral's vertices (for the report's renders)
  result.json   written last: what the report reads; its `job_hash` marks the job as done

A rerun skips jobs whose result.json matches their job.json and resumes the others from their
checkpoints. Which jobs run where (in one process, or as subprocesses one per GPU) is the
driver's business: `experiments/ablate_jobs.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Callable, Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from aim_jax import files, metrics_log
from aim_jax import model_dir as model_dir_lib
from aim_jax.ablation import studies as studies_lib
from aim_jax.ablation import timing
from aim_jax.data import load_actor_source
from aim_jax.fitting import comparison
from aim_jax.fitting import methods as methods_lib
from aim_jax.models import aim
from aim_jax.runs import fit as fit_run
from aim_jax.runs import learn as learn_run

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
  result = files.read_json(path)
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
                       f'(changed: {", ".join(changed[:6])}); use a new workdir')
  os.makedirs(job.folder, exist_ok=True)
  files.write_json(path, dict(job.spec, job_hash=job.hash))


def load_job(folder: str) -> Job:
  """The job of a job folder (its job.json); ValueError naming the file if unreadable."""
  path = os.path.join(folder, 'job.json')
  try:
    with open(path, encoding='utf-8') as f:
      spec = json.load(f)
  except (OSError, ValueError) as err:
    raise ValueError(f'{path}: cannot read the job ({type(err).__name__}: {err})') from None
  spec.pop('job_hash', None)
  return Job(spec['run'], spec['seed'], folder, spec)


def sequence_targets(fit_config, actor, actor_source: str, num_frames: int, kind: str):
  """The held-out sequence of `num_frames` frames as targets of `kind` and its ground truth."""
  if actor.ground_truth is not None:  # The synthetic actor: its own performance generator.
    config = ml_collections.ConfigDict(fit_config.to_dict())
    config.synthetic.num_frames = num_frames
    config.synthetic.kind = kind
    return methods_lib.synthetic_sequence_targets(config, actor)
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
    summary = files.read_json(summary_path)
    if summary.get('learned_steps') != learn_config.train.num_steps:
      summary = None
  if summary is None:
    summary = learn_run.learn_and_evaluate(learn_config, actor, model_dir, log=log)
    summary['learned_steps'] = learn_config.train.num_steps
    files.write_json(summary_path, summary)
  model = model_dir_lib.load_fit_model(model_dir, actor)
  fields = aim.evaluate_chunked(model.params, actor.neutral, model.spec, edit=model.edit)
  files.write_npz(os.path.join(job.folder, 'fields.npz'),
                  **{k: fields[k] for k in ('bone', 'normal', 'thickness', 'skinning')},
                  neutral=fields['shapes'][0])
  rate = metrics_log.median_rate(metrics_log.path_in(model_dir))
  result = {
      'run': job.run, 'seed': job.seed, 'overrides': spec['overrides'],
      'hidden': learn_config.model.hidden, 'activation': learn_config.model.activation,
      'num_params': int(sum(np.size(x) for x in jax.tree_util.tree_leaves(model.params))),
      'eval_ms': timing.evaluation_ms(model.params, model.spec, actor.neutral,
                                      spec['eval_time_repeats']),
      'learning_steps_per_s': rate,
      'reconstruction_mm': summary['reconstruction_mm'],
      'anatomy': summary.get('anatomy'), 'jaw': summary.get('jaw'),
      'anatomy_quality': summary.get('anatomy_quality'),
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
    report = fit_run.fit_and_report(config, model, targets, truth,
                                    os.path.join(job.folder, f'fit_{frames}f'), log=log)
    result['fits'][frames] = {'error_mm': report['error_mm'], 'jaw': report['jaw'],
                              'seconds_per_frame': report['seconds_per_frame_this_run']}
    files.write_json(os.path.join(job.folder, 'result.json'), result)
  files.write_json(os.path.join(job.folder, 'result.json'), result)
  return result
