r"""Step time against vertices, frames and network width: learning and fitting, one run.

Measures, in one run on one machine:
- the LEARNING step (every term of configs/learn.py, full batch, as `learn_step.py` builds it:
  `steppers.learn_step_config`, our JAX step in `lax.scan` blocks of `--learn_block` steps as
  learning's `train.steps_per_call` runs it) against the synthetic actor's vertex count
  (`--resolutions`) at `--hidden`, and against the width of every network (`--widths`) at
  `--resolution`;
- the FITTING step (configs/fit.py, the default F_W variant, dense targets of the synthetic
  held-out performance fitted jointly, the ground-truth basis, as `fit_sequence.py`'s scaling
  section builds it) against frames (`--frames`) at `--resolution` and `--hidden`, against
  vertices (`--resolutions`) and width (`--widths`) at `--base_frames` frames.

Every configuration is compiled first (its first call timed: compile + one call; compile =
first call - the median call), then all of them run in alternating rounds (the order reversed
every other round) so machine noise hits all alike; reported: the median ms per step over the
rounds. The machine (CPU model, cores, load average before and after, jax version) and the date
are recorded with the command.

  python benchmarks/scaling.py
  python benchmarks/scaling.py --resolutions=32,64 --frames=25,50 --widths=64,128 --rounds=3

Writes benchmarks/results/scaling.json and scaling.png (one log-log panel per axis) and prints
markdown tables.
"""

import functools
import os
import platform
import shlex
import sys
import time

import jax
import numpy as np
from absl import app, flags
from steppers import fit_stepper, learn_step_config, learn_stepper

from aim_jax import files, viz
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data import synthetic, synthetic_performance
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from configs import fit as fit_config

_RESOLUTIONS = flags.DEFINE_list('resolutions', ['32', '50', '80', '128'],
                                 'Synthetic actor resolutions of the vertex axis (32: 1,096 '
                                 'vertices, 50: 2,610, 80: 6,576, 128: 16,666).')
_FRAMES = flags.DEFINE_list('frames', ['25', '50', '100', '200', '400'],
                            'Frames of the fitting frame axis (fitted jointly in one step).')
_WIDTHS = flags.DEFINE_list('widths', ['64', '128', '256', '512'],
                            'Hidden widths of the width axis (every network).')
_RESOLUTION = flags.DEFINE_integer('resolution', 64, 'Actor resolution of the frame and width '
                                   'axes (64: 4,238 vertices).')
_HIDDEN = flags.DEFINE_integer('hidden', 128, 'Width of the vertex and frame axes.')
_DEPTH = flags.DEFINE_integer('depth', 3, 'Hidden layers per network.')
_BASE_FRAMES = flags.DEFINE_integer('base_frames', 100, 'Frames of the fitting vertex and width '
                                    'axes.')
_PARTS = flags.DEFINE_list('parts', ['learn', 'fit'], 'Steps measured: learn, fit.')
_ROUNDS = flags.DEFINE_integer('rounds', 9, 'Alternating measurement rounds.')
_LEARN_BLOCK = flags.DEFINE_integer('learn_block', 10, 'Learning steps per call (lax.scan) and '
                                    'per round.')
_FIT_STEPS = flags.DEFINE_integer('fit_steps', 20, 'Fitting steps per round (one per call).')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/scaling.json', 'Result file; the plot is '
                           'written beside it (.png).')

AXES = (('vertices', 'vertices'), ('frames', 'frames'), ('width', 'hidden'))


def machine() -> dict:
  """The CPU model, core count, OS, jax version and device, the load average and the date."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')),
                 cpu)
  except OSError:
    pass
  return {'cpu': cpu, 'cores': os.cpu_count(), 'platform': platform.platform(),
          'jax': jax.__version__, 'device': str(jax.devices()[0]),
          'load_average_1_5_15_min': list(os.getloadavg()), 'date': time.strftime('%Y-%m-%d')}


def cases(parts, resolutions, frames, widths, resolution, hidden, base_frames):
  """The configurations to time, each once: {(kind, resolution, frames, hidden): [axes]}.

  kind is 'learn' or 'fit'; frames is None for learning (every one of the actor's shapes is
  reconstructed every step). The frame and width axes share the base point with the vertex axis
  when `resolution` is among `resolutions` and `hidden` among `widths`."""
  out = {}
  add = lambda key, axis: out.setdefault(key, []).append(axis)
  if 'learn' in parts:
    for r in resolutions:
      add(('learn', r, None, hidden), 'vertices')
    for h in widths:
      add(('learn', resolution, None, h), 'width')
  if 'fit' in parts:
    for r in resolutions:
      add(('fit', r, base_frames, hidden), 'vertices')
    for f in frames:
      add(('fit', resolution, f, hidden), 'frames')
    for h in widths:
      add(('fit', resolution, base_frames, h), 'width')
  return out


@functools.cache
def _actor(resolution):
  """(synthetic actor, its constraints), made once per resolution for the whole run."""
  actor = synthetic.make_synthetic_actor(resolution=resolution)
  return actor, constraints_lib.compute_constraints(actor, source_fraction=0.1)


def learn_case(resolution, hidden, depth, block):
  """(run(n), first-call seconds, sizes) of the learning step at one actor size and width."""
  actor, constraints = _actor(resolution)
  config = learn_step_config(hidden, depth)
  run, first_s = learn_stepper(config, actor, constraints, block)
  return run, first_s, {'vertices': actor.num_vertices, 'shapes': actor.num_shapes,
                        'constraints': constraints.count}


def fit_case(resolution, num_frames, hidden, depth):
  """(run(n), first-call seconds, sizes) of the fitting step: configs/fit.py at `hidden`, the
  actor's ground-truth basis, dense targets of its held-out performance of `num_frames`."""
  actor, _ = _actor(resolution)
  config = fit_config.get_config()
  config.model.hidden, config.model.depth = hidden, depth
  performance = synthetic_performance.make_performance(actor, num_frames=num_frames,
                                                       seed=config.synthetic.seed)
  basis = basis_lib.basis_from_ground_truth(
      actor, aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes))
  targets = {'dense': targets_lib.dense_targets(performance.frames)}
  spec = fit_lib.fit_spec(config, basis.num_coefficients)
  run = fit_stepper(config, spec, basis, targets, num_frames)
  start = time.perf_counter()
  run(1)  # Compiles.
  first_s = time.perf_counter() - start
  run(2)  # Warms up.
  return run, first_s, {'vertices': actor.num_vertices, 'frames': num_frames,
                        'points_per_step': int(config.train.points_per_step)}


def alternate(runs, steps, rounds):
  """Alternating rounds, the order reversed every other round.

  Args:
    runs: key -> run(n), n steps per call; steps: key -> steps per round.
  Returns:
    key -> (rounds,) ms per step, one per round.
  """
  times = {key: [] for key in runs}
  keys = list(runs)
  for r in range(rounds):
    for key in keys if r % 2 == 0 else keys[::-1]:
      start = time.perf_counter()
      runs[key](steps[key])
      times[key].append(1e3 * (time.perf_counter() - start) / steps[key])
    print(f'  round {r + 1}/{rounds} done', flush=True)
  return times


def _axis_value(axis, row):
  return {'vertices': row['vertices'], 'frames': row.get('frames'), 'width': row['hidden']}[axis]


def series(rows):
  """{axis: {'learning' | 'fitting': [(size, median ms, compile s)] by size}}."""
  out = {axis: {} for axis, _ in AXES}
  for row in rows:
    name = 'learning' if row['kind'] == 'learn' else 'fitting'
    for axis in row['axes']:
      out[axis].setdefault(name, []).append(
          (_axis_value(axis, row), row['step_ms'], row['compile_s']))
  return {axis: {name: sorted(points) for name, points in lines.items()}
          for axis, lines in out.items()}


def markdown(axis, label, lines, note):
  """A markdown table of one axis: per size, each step's ms per step and compile seconds, the
  local log-log slope from the previous size, and the fitted slope over the axis."""
  names = list(lines)
  sizes = sorted({p[0] for points in lines.values() for p in points})
  head = ' | '.join(f'{n} (ms/step) | {n} slope | {n} compile (s)' for n in names)
  out = [f'Step time against {axis} ({note}; slope: log-log slope from the previous size):', '',
         f'| {label} | {head} |',
         '|---' * (1 + 3 * len(names)) + '|']
  for size in sizes:
    cells = []
    for name in names:
      points = lines[name]
      i = next((k for k, p in enumerate(points) if p[0] == size), None)
      if i is None:
        cells.append('- | - | -')
        continue
      slope = ('-' if i == 0 else
               f'{np.log(points[i][1] / points[i - 1][1]) / np.log(size / points[i - 1][0]):.2f}')
      cells.append(f'{points[i][1]:.1f} | {slope} | {points[i][2]:.1f}')
    out.append(f'| {size:,} | ' + ' | '.join(cells) + ' |')
  fitted = ' | '.join(
      f'- | {viz.loglog_slope(*zip(*[p[:2] for p in lines[n]])):.2f} | -' for n in names)
  out.append(f'| fitted slope | {fitted} |')
  return '\n'.join(out)


def main(argv):
  del argv
  ints = lambda values: [int(v) for v in values]
  resolutions, frames, widths = ints(_RESOLUTIONS.value), ints(_FRAMES.value), ints(_WIDTHS.value)
  unknown = set(_PARTS.value) - {'learn', 'fit'}
  if unknown:
    raise app.UsageError(f'--parts: unknown {sorted(unknown)} (learn, fit)')
  if _LEARN_BLOCK.value < 1 or _FIT_STEPS.value < 1 or _ROUNDS.value < 1:
    raise app.UsageError('--learn_block, --fit_steps and --rounds must be >= 1')
  results = {'machine': machine(),
             'command': shlex.join(['python', 'benchmarks/scaling.py'] + sys.argv[1:]),
             'rounds': _ROUNDS.value, 'learn_steps_per_call': _LEARN_BLOCK.value,
             'fit_steps_per_round': _FIT_STEPS.value, 'depth': _DEPTH.value,
             'base': {'resolution': _RESOLUTION.value, 'hidden': _HIDDEN.value,
                      'fit_frames': _BASE_FRAMES.value}}
  todo = cases(_PARTS.value, resolutions, frames, widths, _RESOLUTION.value, _HIDDEN.value,
               _BASE_FRAMES.value)
  runs, steps, rows = {}, {}, {}
  print(f'compiling {len(todo)} configurations', flush=True)
  for key, axes in todo.items():
    kind, resolution, num_frames, hidden = key
    if kind == 'learn':
      run, first_s, sizes = learn_case(resolution, hidden, _DEPTH.value, _LEARN_BLOCK.value)
      steps[key], calls = _LEARN_BLOCK.value, 1
    else:
      run, first_s, sizes = fit_case(resolution, num_frames, hidden, _DEPTH.value)
      steps[key], calls = _FIT_STEPS.value, _FIT_STEPS.value
    runs[key] = run
    rows[key] = {'kind': kind, 'axes': axes, 'resolution': resolution, 'hidden': hidden,
                 **sizes, 'first_call_s': first_s, 'steps_per_call': steps[key] // calls}
    print(f'  {kind} r{resolution} {sizes} hidden {hidden}: first call {first_s:.1f} s',
          flush=True)
  print(f'timing: {_ROUNDS.value} alternating rounds', flush=True)
  times = alternate(runs, steps, _ROUNDS.value)
  for key, row in rows.items():
    ms = float(np.median(times[key]))
    row.update(step_ms=ms, step_ms_quartiles=np.percentile(times[key], [25, 75]).tolist(),
               step_ms_rounds=times[key],
               compile_s=max(row['first_call_s'] - 1e-3 * ms * row['steps_per_call'], 0.0))
  results['machine']['load_average_after_1_5_15_min'] = list(os.getloadavg())
  results['rows'] = list(rows.values())
  lines = series(results['rows'])
  results['slopes'] = {axis: {name: viz.loglog_slope(*zip(*[p[:2] for p in points]))
                              for name, points in by_name.items()}
                       for axis, by_name in lines.items()}
  files.write_json(_OUT.value, results)

  base = f'{_actor(_RESOLUTION.value)[0].num_vertices:,} vertices'
  notes = {'vertices': f'hidden {_HIDDEN.value}; fitting {_BASE_FRAMES.value} frames',
           'frames': f'fitting, {base}, hidden {_HIDDEN.value}',
           'width': f'{base}; fitting {_BASE_FRAMES.value} frames'}
  labels = dict(AXES)
  panels = [viz.ScalingPanel(f'vs {axis} ({notes[axis]})', labels[axis],
                             {name: tuple(zip(*[p[:2] for p in points]))
                              for name, points in lines[axis].items()},
                             slopes=(1.0, 2.0) if axis == 'width' else (1.0,))
            for axis, _ in AXES if lines[axis]]
  m = results['machine']
  png = viz.plot_scaling(
      os.path.splitext(_OUT.value)[0] + '.png', panels, ylabel='median ms per step',
      title=f'{m["cpu"]}, {m["cores"]} cores, jax {m["jax"]}, {m["date"]} '
            f'(1-min load average {m["load_average_1_5_15_min"][0]:.1f} before, '
            f'{m["load_average_after_1_5_15_min"][0]:.1f} after)',
      size_px=(560 * len(panels), 480))
  print(f'\n{m["cpu"]}, {m["cores"]} cores, {m["platform"]}, jax {m["jax"]}, {m["date"]}; '
        f'load average {m["load_average_1_5_15_min"][0]:.2f} before, '
        f'{m["load_average_after_1_5_15_min"][0]:.2f} after')
  print(f'command: {results["command"]}\n')
  for axis, label in AXES:
    if lines[axis]:
      print(markdown(axis, label, lines[axis], notes[axis]) + '\n')
  print(f'wrote {_OUT.value} and {png}')


if __name__ == '__main__':
  app.run(main)
