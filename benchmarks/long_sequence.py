r"""Long sequences: throughput and peak memory of a fit of N frames, for several N side by side.

Each N is the whole fitting run of experiments/fit_sequence.py (`runs/fit.run_fit`: targets,
fit chunk by chunk, fit.npz, meshes, evaluation against the ground truth, report) of the
synthetic actor's held-out performance seen as `--markers` noise-free 3D markers
(`config.synthetic.kind = 'markers'`), method 'aim' only, with the learned model `--model_dir`
and configs/fit.py otherwise, but `--steps` steps per chunk of `--chunk_frames` frames (the
default 3,000 steps would take hours for 10,000 frames on a CPU). Each N runs in its own
subprocess, so its peak memory is its own: the peak resident set size (`ru_maxrss`) and the
resident set size sampled by a thread every `--sample_s` seconds (its maximum over each tenth of
the run shows whether it grows); the wall time of the run's parts is measured by wrapping the
library functions that do them.

  python benchmarks/long_sequence.py --model_dir=workdirs/demo --frames=1000,10000

Writes benchmarks/results/long_sequence.json and prints a markdown table. A run's workdir
(`--workdir`/<N>, about 0.9 MB per frame for the demo actor) is deleted after it is measured
unless `--keep`.
"""

import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time

from absl import app, flags, logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

_MODEL_DIR = flags.DEFINE_string('model_dir', 'workdirs/demo', 'A learn_model.py workdir '
                                 '(learned on the synthetic actor).')
_FRAMES = flags.DEFINE_list('frames', ['1000', '10000'], 'Sequence lengths, each run alone.')
_STEPS = flags.DEFINE_integer('steps', 200, 'Fitting steps per chunk.')
_CHUNK_FRAMES = flags.DEFINE_integer('chunk_frames', 100, 'Frames fitted jointly per chunk.')
_MARKERS = flags.DEFINE_integer('markers', 150, 'Markers per frame.')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/aim_long_sequence', 'Where the runs write.')
_KEEP = flags.DEFINE_bool('keep', False, "Keep each run's workdir.")
_SAMPLE_S = flags.DEFINE_float('sample_s', 0.2, 'Seconds between resident set samples.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/long_sequence.json', 'Result file.')
_RUN_FRAMES = flags.DEFINE_integer('run_frames', 0, 'Internal: run this length in this process '
                                   'and write its measurements to --run_result.')
_RUN_RESULT = flags.DEFINE_string('run_result', '', 'Internal: where --run_frames writes.')


def _rss_mb() -> float:
  """This process's resident set size (MB), from /proc/self/statm."""
  with open('/proc/self/statm') as f:
    pages = int(f.read().split()[1])
  return pages * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


class RssSampler(threading.Thread):
  """Samples the resident set size every `every` seconds: (seconds, MB) pairs."""

  def __init__(self, every: float):
    super().__init__(daemon=True)
    self.every, self.samples, self.start_time = every, [], time.perf_counter()
    self.loads = []  # The machine's 1-minute load average (other processes slow the run).
    self.done = threading.Event()

  def run(self):
    while not self.done.is_set():
      self.samples.append((time.perf_counter() - self.start_time, _rss_mb()))
      self.loads.append(os.getloadavg()[0])
      self.done.wait(self.every)

  def stop(self):
    self.done.set()
    self.join()
    self.samples.append((time.perf_counter() - self.start_time, _rss_mb()))


def _folder_mb(path: str) -> float:
  return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path)
             for name in names) / 2 ** 20


def _timed(owner, name: str, seconds: dict):
  """Replaces owner.<name> (a module function or a class method, looked up when called) by a
  wrapper adding its wall time to seconds[name]."""
  function = getattr(owner, name)

  def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
      return function(*args, **kwargs)
    finally:
      seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
  setattr(owner, name, timed)


def _config(num_frames: int):
  from configs import fit as fit_config
  config = fit_config.get_config()
  config.methods = 'aim'
  config.synthetic.kind = 'markers'
  config.synthetic.num_markers = _MARKERS.value
  config.synthetic.num_frames = num_frames
  config.train.num_steps = _STEPS.value
  config.train.chunk_frames = _CHUNK_FRAMES.value
  config.train.log_every = _STEPS.value  # One progress line per chunk.
  return config


def run_one(num_frames: int) -> dict:
  """One fitting run of `num_frames` frames in this process, measured."""
  sampler = RssSampler(_SAMPLE_S.value)
  sampler.start()
  start = time.perf_counter()
  # Imports (JAX) count in the memory, not the time.
  from aim_jax import files
  from aim_jax.fitting import chunks, methods
  from aim_jax.runs import fit as fit_run
  from aim_jax.runs import identity, reporting
  imported = time.perf_counter()
  phases = {}  # Seconds of the parts of the run (the fit itself is the report's).
  for owner, name in [(methods, 'synthetic_sequence_targets'), (identity, 'fitting_identity'),
                      (chunks.Chunks, 'non_finite'), (files, 'write_npz_chunks'),
                      (reporting, 'write_mesh_sequence'), (methods, 'evaluate_chunks'),
                      (fit_run, 'write_report_outputs')]:
    _timed(owner, name, phases)
  workdir = os.path.join(_WORKDIR.value, str(num_frames))
  if os.path.exists(workdir):
    shutil.rmtree(workdir)
  events = {}

  def log(line):
    now = time.perf_counter() - imported
    if line.startswith('fitting ') and 'fitting' not in events:
      events['fitting'], events['rss_fitting'] = now, _rss_mb()
    if line.startswith('chunk ') or line.startswith('fitting '):
      print(f'[{num_frames} frames, {now:7.1f} s, {_rss_mb():6.0f} MB] {line}', flush=True)
  config = _config(num_frames)
  report = fit_run.run_fit(config, _MODEL_DIR.value, 'synthetic', workdir, log=log)
  total_s = time.perf_counter() - imported
  sampler.stop()
  fit_s = report['seconds_this_run']['aim']
  setup_s = events['fitting']
  sizes = {'fit_npz_mb': os.path.getsize(os.path.join(workdir, 'aim', 'fit.npz')) / 2 ** 20,
           'meshes_mb': _folder_mb(os.path.join(workdir, 'aim', 'meshes')),
           'workdir_mb': _folder_mb(workdir)}
  if not _KEEP.value:
    shutil.rmtree(workdir)
  step = max(1, len(sampler.samples) // 400)
  end = sampler.samples[-1][0]
  tenths = [max([mb for t, mb in sampler.samples if i * end / 10 <= t <= (i + 1) * end / 10]
                or [float('nan')]) for i in range(10)]
  return {
      'frames': num_frames, 'chunk_frames': _CHUNK_FRAMES.value,
      'chunks': math.ceil(num_frames / _CHUNK_FRAMES.value), 'steps_per_chunk': _STEPS.value,
      'markers': _MARKERS.value, 'import_s': imported - start,
      'setup_s': setup_s, 'fit_s': fit_s, 'outputs_s': total_s - setup_s - fit_s,
      'total_s': total_s, 'fit_frames_per_s': num_frames / fit_s,
      'total_frames_per_s': num_frames / total_s,
      'ru_maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      'sampled_peak_rss_mb': max(mb for _, mb in sampler.samples),
      'rss_when_fitting_starts_mb': events['rss_fitting'],
      'max_rss_by_tenth_of_the_run_mb': tenths, 'phases_s': phases,
      'mean_load_average': sum(sampler.loads) / len(sampler.loads),
      'rss_samples': [[round(t, 2), round(mb, 1)] for t, mb in sampler.samples[::step]],
      'error_mm': report['error_mm']['aim'], 'jaw': report['jaw'].get('aim'), **sizes,
      'config': config.to_dict(),
  }


def main(argv):
  del argv
  if _RUN_FRAMES.value:
    result = run_one(_RUN_FRAMES.value)
    with open(_RUN_RESULT.value, 'w') as f:
      json.dump(result, f)
    return
  import jax
  runs = []
  for frames in (int(n) for n in _FRAMES.value):
    result_file = os.path.join(_WORKDIR.value, f'result_{frames}.json')
    os.makedirs(_WORKDIR.value, exist_ok=True)
    command = [sys.executable, os.path.abspath(__file__), f'--run_frames={frames}',
               f'--run_result={result_file}', f'--model_dir={_MODEL_DIR.value}',
               f'--steps={_STEPS.value}', f'--chunk_frames={_CHUNK_FRAMES.value}',
               f'--markers={_MARKERS.value}', f'--workdir={_WORKDIR.value}',
               f'--sample_s={_SAMPLE_S.value}', f'--keep={_KEEP.value}']
    print(' '.join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)
    with open(result_file) as f:
      runs.append(json.load(f))
    os.remove(result_file)
  results = {'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                         'cpu_count': os.cpu_count(), 'jax': jax.__version__,
                         'device': str(jax.devices()[0])},
             'command': ' '.join(['python', 'benchmarks/long_sequence.py'] + sys.argv[1:]),
             'targets': f'{_MARKERS.value} noise-free 3D markers of the synthetic held-out '
                        'performance (config.synthetic.kind = markers)',
             'methods': 'aim', 'runs': runs}
  out = os.path.join(REPO, _OUT.value)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, 'w') as f:
    json.dump(results, f, indent=1)
  print(f'\n{results["targets"]}, aim, {_STEPS.value} steps per chunk of '
        f'{_CHUNK_FRAMES.value} frames; {results["machine"]["cpu_count"]} CPUs')
  print('| frames | fit (s) | fit frames/s | total (s) | total frames/s | peak RSS (MB) '
        '| RSS when fitting starts (MB) | max RSS per tenth of the run (MB) | fit.npz (MB) '
        '| error mean (mm) |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for r in runs:
    tenths = ' '.join(f'{mb:.0f}' for mb in r['max_rss_by_tenth_of_the_run_mb'])
    print(f'| {r["frames"]:,} | {r["fit_s"]:.0f} | {r["fit_frames_per_s"]:.1f} | '
          f'{r["total_s"]:.0f} | {r["total_frames_per_s"]:.1f} | {r["ru_maxrss_mb"]:.0f} | '
          f'{r["rss_when_fitting_starts_mb"]:.0f} | {tenths} | {r["fit_npz_mb"]:.0f} | '
          f'{r["error_mm"]["mean"]:.4f} |')
  for r in runs:
    print(f'{r["frames"]:,} frames, seconds: setup {r["setup_s"]:.1f} (imports '
          f'{r["import_s"]:.1f} more), fit {r["fit_s"]:.1f}, outputs {r["outputs_s"]:.1f}; '
          + ', '.join(f'{k} {v:.1f}' for k, v in r['phases_s'].items())
          + f'; mean load average {r["mean_load_average"]:.2f} on {os.cpu_count()} CPUs')
  print(f'wrote {out}')


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint at INFO.
  app.run(main)
