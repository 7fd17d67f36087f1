"""Ablations (aim_jax/ablation, experiments/ablate.py, experiments/ablate_jobs.py): study
definitions, the agreement statements on known answers, and every study end to end on the quick
config (resume, skip, subprocess jobs)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from aim_jax.ablation import report as report_lib
from aim_jax.ablation import runner, studies
from configs import ablate_quick
from experiments import ablate_jobs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_variants_share_the_full_model():
  config = ablate_quick.get_config()
  runs = studies.variant_overrides(config, studies.STUDIES)
  # sine (Table 2), L_Model (Table 3), the base width (Fig. 18) and AIM (Table 1) are one run.
  assert runs['full'] == {}
  assert set(runs) == {'full', 'relu', 'gelu', 'no_L_A', 'no_L_K', 'no_L_Sym', 'no_L_D',
                       'hidden_16'}
  assert runs['no_L_A'] == {'loss.use.anatomy': False}
  assert runs['hidden_16'] == {'model.hidden': 16}
  rows = studies.rows(config, studies.STUDIES)
  assert [r.run for r in rows if r.study == 'activation'] == ['full', 'relu', 'gelu']
  assert {r.run for r in rows if r.study == 'baselines'} == {'full'}
  fits = studies.fits_needed(config, studies.STUDIES)
  # The full model fits the 4-frame sequence with every method and the 3-frame one with AIM.
  assert {k: sorted(v) for k, v in fits[('full', 0)].items()} == {
      4: ['aim', 'aim_global', 'gbs'], 3: ['aim']}
  assert fits[('relu', 0)] == {4: ['aim']}


def test_overrides_and_study_names_are_checked():
  config = ablate_quick.get_config()
  learn = studies.apply_overrides(config.learn, {'model.activation': 'relu'})
  assert learn.model.activation == 'relu' and config.learn.model.activation == 'sine'
  with pytest.raises(KeyError, match='model.actvation'):
    studies.apply_overrides(config.learn, {'model.actvation': 'relu'})
  with pytest.raises(ValueError, match='unknown or no study'):
    studies.parse_studies('activation,loss')
  assert studies.parse_studies('all') == list(studies.STUDIES)
  config.studies.hidden.sizes = '64,x'
  with pytest.raises(ValueError, match='sizes'):
    studies.hidden_sizes(config)


def _row_result(study, label, run, errors, paper, hidden=128, eval_ms=1.0, method='aim'):
  row = studies.Row(study, label, run, method, 10, paper)
  results = [{'hidden': hidden, 'eval_ms': eval_ms} for _ in errors]
  return report_lib.RowResult(row, list(range(len(errors))), np.asarray(errors, float), results)


def test_agreement_statements_follow_the_numbers():
  rows = [_row_result('losses', 'L_Model', 'full', [0.10, 0.11, 0.12], 0.19),
          _row_result('losses', 'no_L_A', 'no_L_A', [0.30, 0.31, 0.29], 0.29),
          _row_result('losses', 'no_L_D', 'no_L_D', [0.20, 0.21, 0.19], 0.21)]
  for r, bone in zip(rows, (2.0, 9.0, 3.0)):
    for result in r.results:
      result['anatomy'] = {name: {'unconstrained': {'mean': bone}}
                           for name in ('bone_mm', 'thickness_mm')}
  text = ' '.join(report_lib.agreement('losses', rows))
  assert ('Removing L_A hurts the recovered anatomy most: agrees (worst bone error no_L_A, '
          '9.00 mm; full L_Model 2.00 mm)') in text
  assert ('bone error where unconstrained, best first): L_Model 2.00, no_L_D 3.00, no_L_A 9.00'
          in text)
  assert ('Full L_Model best (the paper\'s claim): agrees; L_Model against no_L_D: gap 0.090 mm'
          in text)
  assert 'Removing L_A hurts most (the paper\'s claim): agrees' in text
  assert 'ours agrees' in text
  # Swap: now no_L_D is best and L_Model worst.
  rows[0].errors, rows[2].errors = np.array([0.4, 0.41, 0.39]), np.array([0.05, 0.06, 0.04])
  text = ' '.join(report_lib.agreement('losses', rows))
  assert 'Full L_Model best (the paper\'s claim): disagrees' in text
  assert 'Removing L_A hurts most (the paper\'s claim): disagrees; worst L_Model' in text
  assert 'ours differs' in text
  hidden = [_row_result('hidden', 'hidden 64', 'hidden_64', [0.3], None, 64, 1.0),
            _row_result('hidden', 'hidden 128', 'full', [0.2], None, 128, 2.0)]
  text = ' '.join(report_lib.agreement('hidden', hidden))
  assert 'Error falls as the width grows (the paper\'s Fig. 18): agrees' in text
  assert 'Evaluation time grows with the width: agrees' in text


def _mtimes(workdir):
  return {p: os.path.getmtime(os.path.join(workdir, 'runs', p, 'seed_0', 'result.json'))
          for p in os.listdir(os.path.join(workdir, 'runs'))}


def test_every_study_end_to_end_with_resume(tmp_path):
  workdir = str(tmp_path / 'ablate')
  config = ablate_quick.get_config()
  # Two jobs as subprocesses, two at a time (one per GPU where there are GPUs).
  config.parallel_jobs = 2
  hidden_jobs = runner.make_jobs(config, ['hidden'], 'synthetic', workdir)
  assert [j.run for j in hidden_jobs] == ['full', 'hidden_16']
  status = ablate_jobs.run_jobs(hidden_jobs, parallel=2, log=None)
  assert set(status.values()) == {'done'}, status
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
