"""End to end: the fit_sequence pipeline (aim_jax/runs/fit.py) on a tiny learned model for every
kind of target, streamed chunk by chunk (the same files and report as the in-memory path, resumed
after a kill, an old fit kept when a chunk is bad), and experiments/fit_sequence.py's one-line
error on bad targets."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import file_hashes

from aim_jax import files, mesh_io, model_dir, train_loop
from aim_jax.data import synthetic
from aim_jax.fitting import methods
from aim_jax.runs import fit as fit_run
from aim_jax.runs import learn as learn_run
from aim_jax.runs import reporting
from configs import fit_test, learn_test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('model'))
  config = learn_test.get_config()
  learn_run.learn_and_evaluate(config, synthetic.make_synthetic_actor(resolution=24),
                               workdir, log=None)
  return workdir


@pytest.mark.parametrize('kind', ['dense', 'markers', 'landmarks'])
def test_fit_and_report_end_to_end(tmp_path, tiny_model, kind):
  config = fit_test.get_config()
  config.synthetic.kind = kind
  config.output.render = kind == 'dense'
  model = model_dir.load_fit_model(tiny_model)
  targets, truth = methods.synthetic_sequence_targets(config, model.actor)
  report = fit_run.fit_and_report(config, model, targets, truth, str(tmp_path), log=None)
  assert set(report['error_mm']) == {'aim', 'aim_global', 'gbs'}
  for method, s in report['error_mm'].items():
    assert np.isfinite(s['mean']) and s['mean'] < 20.0, (method, s)
  assert set(report['jaw']) == {'aim', 'aim_global'}
  written = json.loads((tmp_path / 'report.json').read_text())
  assert written['error_mm']['aim']['p95'] == pytest.approx(report['error_mm']['aim']['p95'])
  assert (tmp_path / 'per_frame.csv').read_text().count('\n') == config.synthetic.num_frames + 1
  assert (tmp_path / 'per_frame_error.png').exists()
  assert (tmp_path / 'aim' / 'meshes' / 'frame_0005.ply').exists()
  with np.load(tmp_path / 'aim' / 'fit.npz') as fit:
    assert fit['coefficients'].shape[:2] == (config.synthetic.num_frames,
                                             model.actor.num_vertices)
  if kind == 'dense':
    assert (tmp_path / 'renders' / 'error_maps.png').exists()


def test_cli_reports_bad_targets_in_one_line(tmp_path, tiny_model):
  run = subprocess.run(
      [sys.executable, os.path.join(REPO, 'experiments', 'fit_sequence.py'),
       f'--model_dir={tiny_model}', f'--targets={tmp_path / "nothing.npz"}',
       f'--workdir={tmp_path / "w"}', f'--config={os.path.join(REPO, "configs", "fit_test.py")}'],
      capture_output=True, text=True, cwd=REPO, timeout=300)
  assert run.returncode != 0
  assert 'nothing.npz: no such file' in run.stderr.strip().splitlines()[-1]


def streamed_config():
  config = fit_test.get_config()
  config.synthetic.kind = 'markers'
  config.synthetic.num_frames = 7
  config.train.chunk_frames = 3  # Chunks of 3, 3 and 1 frames.
  config.output.render_frames = 2
  return config


@pytest.fixture(scope='module')
def streamed_run(tiny_model, tmp_path_factory):
  """A streamed fit killed before its second chunk, then rerun to the end: (workdir, model,
  targets, in-memory truth, report, the killed run's log)."""
  workdir = str(tmp_path_factory.mktemp('streamed') / 'fit')
  config = streamed_config()
  model = model_dir.load_fit_model(tiny_model)
  targets, truth = methods.synthetic_sequence_targets(config, model.actor, stream=True)
  lines = []

  def killed_at_the_second_chunk(line):
    lines.append(line)
    if line.startswith('chunk 2/3'):
      raise KeyboardInterrupt
  with pytest.raises(KeyboardInterrupt):
    fit_run.fit_and_report(config, model, targets, truth, workdir, log=killed_at_the_second_chunk)
  assert os.path.exists(os.path.join(workdir, 'aim', 'chunk_000', 'result.npz'))
  assert not os.path.exists(os.path.join(workdir, 'aim', 'chunk_001', 'result.npz'))
  assert not os.path.exists(os.path.join(workdir, 'aim', 'fit.npz'))
  report = fit_run.fit_and_report(config, model, targets, truth, workdir, log=lines.append)
  return workdir, model, targets, {k: np.asarray(v) for k, v in truth.items()}, report, lines


def test_streamed_fit_writes_what_the_in_memory_path_does(streamed_run):
  workdir, model, targets, truth, report, lines = streamed_run
  # aim killed at its second chunk, then resumed from there; aim_global fitted whole.
  assert [line[:9] for line in lines if line.startswith('chunk ')] == [
      'chunk 1/3', 'chunk 2/3', 'chunk 2/3', 'chunk 3/3', 'chunk 1/3', 'chunk 2/3', 'chunk 3/3']
  config = streamed_config()
  in_memory = {}
  for method in ('aim', 'aim_global', 'gbs'):
    # What the in-memory path fits (AIM reads the same chunk files; GBS refits in memory) and
    # writes: write_npz of the whole fit.
    in_memory[method] = methods.fit_method(method, config, model, targets, workdir, log=None)
    expected = files.write_npz(os.path.join(workdir, f'{method}_in_memory.npz'),
                               **in_memory[method])
    with np.load(os.path.join(workdir, method, 'fit.npz')) as streamed, np.load(expected) as ref:
      assert streamed.files == ref.files
      for key in ref.files:
        assert streamed[key].dtype == ref[key].dtype
        np.testing.assert_array_equal(streamed[key], ref[key])
    meshes = sorted(os.listdir(os.path.join(workdir, method, 'meshes')))
    assert meshes == [f'frame_{j:04d}.ply' for j in range(7)]
    vertices, _ = mesh_io.read_mesh(os.path.join(workdir, method, 'meshes', 'frame_0004.ply'))
    np.testing.assert_allclose(vertices, in_memory[method]['frames'][4], atol=1e-4)
  evaluation = methods.evaluate_methods(in_memory, truth, targets, model.actor)
  assert report['error_mm'] == evaluation['error_mm']  # Bit for bit.
  assert report['jaw'] == evaluation['jaw'] and set(report['jaw']) == {'aim', 'aim_global'}
  with open(os.path.join(workdir, 'per_frame.csv'), newline='') as f:
    assert f.read() == reporting.per_frame_csv(evaluation['per_frame_mm'])
  assert os.path.exists(os.path.join(workdir, 'renders', 'error_maps.png'))
  assert not [n for n in os.listdir(workdir) if 'tmp' in n]


def test_a_bad_chunk_leaves_the_old_fit_as_it_was(streamed_run, tmp_path):
  workdir = str(tmp_path / 'fit')
  shutil.copytree(streamed_run[0], workdir)
  model, targets, truth = streamed_run[1:4]
  bad = os.path.join(workdir, 'aim', 'chunk_001', 'result.npz')
  with np.load(bad) as data:
    arrays = dict(data)
  arrays['coefficients'][1, 2, 0] = np.nan  # As a chunk that diverged.
  np.savez(bad, **arrays)
  before = file_hashes(workdir)
  with pytest.raises(train_loop.Diverged, match='aim: non-finite coefficients'):
    fit_run.fit_and_report(streamed_config(), model, targets, truth, workdir, log=None)
  assert file_hashes(workdir) == before
