"""End to end: one sequence fitted by two processes on JAX's multi-controller runtime
(aim_jax/distributed.py, `fit_sequence.py --distributed`, gloo collectives on the CPU) gives
the single-process fit, and only process 0 writes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import free_port, one_cpu_env, with_overrides
from tiny_models import make_model_workdir

from aim_jax.runs import fit as fit_run
from configs import fit_test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
  return make_model_workdir(str(tmp_path_factory.mktemp('model')))


SETTINGS = {'methods': 'aim,gbs', 'synthetic.num_frames': 7, 'train.chunk_frames': 5,
            'train.num_steps': 30, 'train.checkpoint_every': 100, 'output.render': False,
            'output.meshes': False}


def _config():
  return with_overrides(fit_test.get_config(), **SETTINGS)


def _command(model, workdir, *extra):
  return [sys.executable, os.path.join(REPO, 'experiments', 'fit_sequence.py'),
          f'--config={os.path.join(REPO, "configs", "fit_test.py")}', f'--model_dir={model}',
          f'--workdir={workdir}', *[f'--config.{k}={str(v).lower()}' for k, v in SETTINGS.items()],
          *extra]


def test_two_processes_fit_what_one_does(tmp_path, tiny_model):
  one = tmp_path / 'one'
  fit_run.run_fit(_config(), tiny_model, 'synthetic', str(one), log=None)

  two = tmp_path / 'two'
  port = free_port()
  runs = [subprocess.Popen(_command(tiny_model, two, '--distributed',
                                    f'--coordinator=localhost:{port}', '--num_processes=2',
                                    f'--process_id={rank}'),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           cwd=REPO, env=one_cpu_env())
          for rank in (0, 1)]
  outputs = [run.communicate(timeout=600)[0] for run in runs]
  for run, output in zip(runs, outputs):
    assert run.returncode == 0, output
  assert 'aim' in outputs[0] and 'fitting aim' not in outputs[1]  # Process 0 alone speaks.

  with np.load(one / 'aim' / 'fit.npz') as a, np.load(two / 'aim' / 'fit.npz') as b:
    assert sorted(a.files) == sorted(b.files)
    assert a['frames'].shape == (7,) + a['frames'].shape[1:]
    np.testing.assert_allclose(b['frames'], a['frames'], atol=1e-3)
    np.testing.assert_allclose(b['jaw_rotation'], a['jaw_rotation'], atol=1e-4)
  report = {name: json.loads((tmp_path / name / 'report.json').read_text())
            for name in ('one', 'two')}
  for method in ('aim', 'gbs'):
    assert report['two']['error_mm'][method]['mean'] == pytest.approx(
        report['one']['error_mm'][method]['mean'], abs=1e-4)
  # Chunks of 5 and 2 frames (shapes test_compile_once.py does not see compiled before it).
  # Both chunks were fitted and written once, with process 0's metrics only.
  assert sorted(os.listdir(two / 'aim')) == sorted(os.listdir(one / 'aim'))
  for chunk in ('chunk_000', 'chunk_001'):
    lines = (two / 'aim' / chunk / 'metrics.jsonl').read_text().splitlines()
    assert len(lines) == len((one / 'aim' / chunk / 'metrics.jsonl').read_text().splitlines())
