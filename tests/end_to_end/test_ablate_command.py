"""End to end: experiments/ablate.py and experiments/ablate_jobs.py on the quick config: every
study with resume and skip (subprocess jobs), one-line errors, and a workdir of another config
refused."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import free_port, one_cpu_env

from aim_jax.ablation import report as report_lib
from aim_jax.ablation import runner, studies
from configs import ablate_quick
from experiments import ablate_jobs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mtimes(workdir):
  return {p: os.path.getmtime(os.path.join(workdir, 'runs', p, 'seed_0', 'result.json'))
          for p in os.listdir(os.path.join(workdir, 'runs'))}


def test_every_study_end_to_end_with_resume(tmp_path):
  workdir = str(tmp_path / 'ablate')
  config = ablate_quick.get_config()
  # The hidden study's two jobs spread over two processes (jax.distributed on localhost), each
  # running its one job as a subprocess; process 0 alone writes the report.
  hidden_jobs = runner.make_jobs(config, ['hidden'], 'synthetic', workdir)
  assert [j.run for j in hidden_jobs] == ['full', 'hidden_16']
  port = free_port()
  runs = [subprocess.Popen(
      [sys.executable, 'experiments/ablate.py', '--config=configs/ablate_quick.py',
       '--study=hidden', f'--workdir={workdir}', '--distributed',
       f'--coordinator=localhost:{port}', '--num_processes=2', f'--process_id={rank}'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=one_cpu_env())
      for rank in (0, 1)]
  outputs = [run.communicate(timeout=900)[0] for run in runs]
  for run, output in zip(runs, outputs):
    assert run.returncode == 0, output[-3000:]
  for job, rank in zip(hidden_jobs, (0, 1)):
    assert runner.read_result(job) is not None, outputs
    assert f'[process {rank}/2] job 1/1 {job.run} seed 0: done' in outputs[rank], outputs[rank]
  assert '# Ablations on actor' in outputs[0] and '# Ablations on actor' not in outputs[1]
  assert os.path.exists(os.path.join(workdir, 'report.md'))
  # The rest in this process: the two finished jobs are kept, the full model only gains fits.
  config.parallel_jobs = 1
  result = subprocess.run(
      [sys.executable, 'experiments/ablate.py', '--config=configs/ablate_quick.py',
       '--study=all', f'--workdir={workdir}'], cwd=REPO, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert '8 jobs: 1 finished before, 7 to run' in result.stdout
  with open(os.path.join(workdir, 'results.csv')) as f:
    lines = list(csv.DictReader(f))
  # 3 activations + 5 loss variants + 2 widths + 3 baselines, one seed each.
  assert len(lines) == 13
  assert {row['study'] for row in lines} == set(studies.STUDIES)
  assert all(np.isfinite(float(row['error_mean_mm'])) and float(row['error_mean_mm']) > 0
             for row in lines)
  assert all(float(row['bone_mm_unconstrained']) > 0 for row in lines
             if row['study'] != 'baselines')
  text = open(os.path.join(workdir, 'report.md')).read()
  for title in report_lib.TITLES.values():
    assert title in text
  assert 'Not run yet' not in text
  for name in ('plots/activation.png', 'plots/losses.png', 'plots/hidden.png',
               'plots/hidden_tradeoff.png', 'plots/baselines.png',
               'renders/activation_anatomy.png', 'renders/losses_anatomy.png'):
    assert os.path.getsize(os.path.join(workdir, name)) > 1000, name
  # A rerun skips every finished job; losing one result reruns that job only, from its saved
  # model (no relearning: its checkpoints stay as they were).
  before = _mtimes(workdir)
  os.remove(os.path.join(workdir, 'runs', 'gelu', 'seed_0', 'result.json'))
  checkpoints = os.listdir(os.path.join(workdir, 'runs', 'gelu', 'seed_0', 'model',
                                        'checkpoints'))
  jobs = runner.make_jobs(config, studies.STUDIES, 'synthetic', workdir)
  status = ablate_jobs.run_jobs(jobs, log=None)
  assert [os.path.basename(os.path.dirname(k)) for k, v in status.items() if v == 'done'] == [
      'gelu']
  after = _mtimes(workdir)
  assert all(after[k] == before[k] for k in before if k != 'gelu')
  assert os.listdir(os.path.join(workdir, 'runs', 'gelu', 'seed_0', 'model',
                                 'checkpoints')) == checkpoints


def test_bad_input_is_one_line(tmp_path):
  for args, expected in ((['--study=activations'], 'unknown or no study'),
                         (['--actor=/no/such/actor'], '/no/such/actor')):
    result = subprocess.run(
        [sys.executable, 'experiments/ablate.py', '--config=configs/ablate_quick.py',
         f'--workdir={tmp_path}'] + args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error:') and expected in last, result.stderr[-500:]


def test_a_workdir_of_another_config_is_refused(tmp_path):
  config = ablate_quick.get_config()
  job = runner.make_jobs(config, ['activation'], 'synthetic', str(tmp_path))[0]
  runner.write_job(job)
  runner.write_job(job)  # The same job again is fine.
  config.learn.train.num_steps += 10
  changed = runner.make_jobs(config, ['activation'], 'synthetic', str(tmp_path))[0]
  with pytest.raises(ValueError, match='learn.train.num_steps.*new workdir'):
    runner.write_job(changed)
  # Fitting more sequences is not a change of config.
  more = runner.make_jobs(config, ['activation', 'losses'], 'synthetic', str(tmp_path))[0]
  assert more.hash == changed.hash
