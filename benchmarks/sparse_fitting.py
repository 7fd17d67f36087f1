r"""Sparse-marker and landmark fitting under the conditions users meet (issue 12).

For each learned model (the synthetic actor and ICT actors with their held-out performance,
`prepare_actor.py`'s performance.npz: sparse activations and a separate jaw track), every
condition of the sweep is fitted by AIM, AIM-global and GBS and measured against the ground
truth: marker counts (30, 60, 150, 300) at 0.3 mm noise and 5 % dropouts, noise (0, 0.3, 1 mm)
and dropouts (0, 5, 20 %) at 150 markers, 1,000 2D landmarks at 1 and 2 px, and dense targets.

The held-out study (`--study_conditions`): for each scale of the regularisation (`--scales`) AIM
is fitted on every marker (true error) and k-fold cross-validated (held-out error, no ground
truth used); the scale picked by held-out error is compared with the best by true error, and
the correlation of held-out and true errors is reported over every (condition, scale) pair.

  python benchmarks/sparse_fitting.py --models=workdirs/demo,runs/ict0=actors/ict0 \
      --workdir=/tmp/sparse_fitting

A model is `model_dir` (synthetic actor) or `model_dir=actor_dir` (ICT). Fits resume from
`--workdir`, under a folder per actor keyed by the fitting config and the ground truth (a changed
config or performance fits anew). Writes benchmarks/results/sparse_fitting.json (merged with the
file's earlier actors when frames and steps agree) and a plot of error against marker count per
method (sparse_fitting.png), and prints a line per condition.
"""

import hashlib
import json
import os
import platform
import time

import numpy as np
from absl import app, flags

from aim_jax import files, model_dir
from aim_jax.data import ict, synthetic_performance
from aim_jax.fitting import comparison, methods
from aim_jax.fitting import generic_model as gm
from aim_jax.fitting.synthetic_targets import Condition, condition_targets
from configs import fit as fit_config

_MODELS = flags.DEFINE_list('models', ['workdirs/demo'],
                            'model_dir (synthetic actor) or model_dir=actor_dir (ICT).')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/sparse_fitting', 'Fits (resumable).')
_FRAMES = flags.DEFINE_integer('frames', 60, 'Frames of each performance fitted.')
_STEPS = flags.DEFINE_integer('steps', 2000, 'Adam steps of each AIM / AIM-global fit.')
_SWEEP = flags.DEFINE_enum('sweep', 'full', ['full', 'main', 'markers', 'landmarks',
                                                   'none'],
                           'full: every condition; main: 150 markers, 0.3 mm, 5 % and dense; '
                           'markers: that marker condition alone; landmarks: the landmark '
                           'conditions.')
_CONDITIONS = flags.DEFINE_list('conditions', [], 'Conditions fitted instead of the sweep\'s '
                                '(names as in the results).')
_METHODS = flags.DEFINE_list('methods', list(methods.METHODS), 'Methods of the sweep.')
_STUDY = flags.DEFINE_list('study_conditions', ['markers150_noise0.3mm_drop5'],
                           'Conditions of the held-out study (names as in the results).')
_SCALES = flags.DEFINE_string('scales', '0,0.3,1,3', 'Regularisation scales of the study.')
_FOLDS = flags.DEFINE_integer('folds', 4, 'Folds of the held-out study.')
_SEED = flags.DEFINE_integer('seed', 7, 'Seed of the marker and landmark placements.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/sparse_fitting.json', 'Result file.')
_ICT_PATH = flags.DEFINE_string('ict_path', '', 'ICT-FaceKit (npz or folder): adds the generic '
                                'linear 3DMM (50 identity modes, the 53 ICT expressions) to the '
                                '3D conditions of ICT actors.')
_CONFIG_OVERRIDES = flags.DEFINE_list('set', [], 'Config overrides key=value (e.g. '
                                      'loss.coefficient_smooth=1).')

MAIN = Condition('markers', 150, 0.3, 0.05)


def sweep_conditions(kind: str) -> list:
  if kind == 'none':
    return []
  if kind == 'main':
    return [MAIN, Condition('dense')]
  if kind == 'markers':
    return [MAIN]
  if kind == 'landmarks':
    return [Condition('landmarks', 1000, s) for s in (1.0, 2.0)]
  conditions = [Condition('markers', n, 0.3, 0.05) for n in (30, 60, 150, 300)]
  conditions += [Condition('markers', 150, s, 0.05) for s in (0.0, 1.0)]
  conditions += [Condition('markers', 150, 0.3, d) for d in (0.0, 0.2)]
  conditions += [Condition('landmarks', 1000, s) for s in (1.0, 2.0)]
  return conditions + [Condition('dense')]


def parse_condition(name: str) -> Condition:
  for c in sweep_conditions('full') + [Condition('markers', n, s, d) for n in (30, 60, 150, 300)
                                       for s in (0.0, 0.3, 1.0) for d in (0.0, 0.05, 0.2)]:
    if c.name == name:
      return c
  raise ValueError(f'unknown condition {name!r}')


def base_config():
  config = fit_config.get_config()
  config.train.num_steps = _STEPS.value
  config.train.log_every = _STEPS.value
  config.train.checkpoint_every = _STEPS.value
  config.output.meshes = False
  config.output.render = False
  for item in _CONFIG_OVERRIDES.value:
    key, value = item.split('=')
    group, name = key.split('.')
    config[group][name] = type(config[group][name])(value)
  return config


GENERIC_IDENTITY_MODES = 50


def load(entry: str):
  """(name, FitModel, truth {'frames', 'jaw_rotation', 'jaw_translation'}, generic 3DMM or
  None)."""
  path, _, actor_dir = entry.partition('=')
  model = model_dir.load_fit_model(path)
  generic = None
  if actor_dir:
    truth = comparison.load_performance(actor_dir, model.actor.num_vertices)
    if _ICT_PATH.value:
      ids = gm.ict_actor_vertex_ids(actor_dir, model.actor.num_vertices)
      generic = gm.from_ict(ict.load_ict_model(_ICT_PATH.value), ids, GENERIC_IDENTITY_MODES)
  else:
    p = synthetic_performance.make_performance(model.actor, num_frames=100, seed=1)
    truth = {'frames': p.frames, 'jaw_rotation': p.jaw_rotation,
             'jaw_translation': p.jaw_translation}
  truth = {k: np.asarray(v)[:_FRAMES.value] for k, v in truth.items()}
  return model.actor.name, model, truth, generic


def run_key(name: str, config, truth) -> str:
  """The actor's fit folder: its name and a hash of the fitting config and ground truth."""
  digest = hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True).encode())
  digest.update(np.ascontiguousarray(truth['frames']).tobytes())
  return f'{name}_{digest.hexdigest()[:10]}'


def condition_config(config, condition: Condition):
  config = methods.scaled_config(config, 'aim', 1.0)  # A copy.
  config.noise.markers_mm = condition.noise if condition.kind == 'markers' else 0.0
  config.noise.landmarks_px = condition.noise if condition.kind == 'landmarks' else 0.0
  return config


def fit_errors(config, model, truth, targets, workdir, method) -> dict:
  """A method's fit as `fit_sequence.py` makes it (with any held-out choice of its settings:
  `methods.fit_with_held_out`): mean error, seconds, jaw error, the chosen scale."""
  start = time.perf_counter()
  chunks, held = methods.fit_with_held_out(method, config, model, targets, workdir, log=None)
  result = chunks.load()
  seconds = time.perf_counter() - start
  evaluation = methods.evaluate_methods({method: result}, truth, targets, model.actor)
  out = {'error_mm': evaluation['error_mm'][method]['mean'], 'seconds': seconds}
  if held is not None:
    out['chosen_scale'] = held['chosen_scale']
    out['held_out_rms'] = {p['scale']: p['score'] for p in held['per_scale']}
  if method in evaluation['jaw']:
    out['jaw_deg'] = evaluation['jaw'][method]['rotation_deg']['mean']
  return out


def generic_errors(generic, model, truth, targets) -> dict:
  """The generic 3DMM's closed-form fit (compare_generic's priors)."""
  start = time.perf_counter()
  fit = gm.fit_generic(generic, targets, identity_prior=1e-4, expression_ridge=1e-4)
  seconds = time.perf_counter() - start
  evaluation = methods.evaluate_methods({'generic': {'frames': fit.frames}}, truth, targets,
                                        model.actor)
  return {'error_mm': evaluation['error_mm']['generic']['mean'], 'seconds': seconds}


def run_sweep(config, name, model, truth, conditions, log, generic=None) -> dict:
  rows = {}
  for condition in conditions:
    cfg = condition_config(config, condition)
    targets = condition_targets(condition, model.actor.neutral, model.actor.faces,
                                model.actor.region, truth['frames'], _SEED.value)
    row = {}
    for method in _METHODS.value:
      row[method] = fit_errors(cfg, model, truth, targets,
                               os.path.join(_WORKDIR.value, run_key(name, config, truth),
                                            condition.name), method)
    if generic is not None and condition.kind != 'landmarks':
      row[f'generic_k{GENERIC_IDENTITY_MODES}'] = generic_errors(generic, model, truth, targets)
    rows[condition.name] = row
    log(f'{name} {condition.name}: ' + ', '.join(
        f'{m} {r["error_mm"]:.3f} mm' + (f' ({r["jaw_deg"]:.2f} deg)' if 'jaw_deg' in r else '')
        for m, r in row.items()))
  return rows


def run_study(config, name, model, truth, condition: Condition, log) -> dict:
  """True and held-out error of AIM at every scale, and the scale each picks."""
  scales = methods.parse_scales(_SCALES.value)
  cfg = condition_config(config, condition)
  targets = condition_targets(condition, model.actor.neutral, model.actor.faces,
                              model.actor.region, truth['frames'], _SEED.value)
  base = os.path.join(_WORKDIR.value, run_key(name, config, truth), condition.name, 'study')
  rows = []
  for scale in scales:
    scaled = methods.scaled_config(cfg, 'aim', scale)
    true = fit_errors(scaled, model, truth, targets, os.path.join(base, f'scale_{scale:g}'),
                      'aim')
    one = methods.scaled_config(cfg, 'aim', 1.0)
    one.cv.folds = _FOLDS.value
    one.cv.scales = str(scale)
    _, held = methods.fit_with_held_out('aim', one, model, targets,
                                        os.path.join(base, f'cv_{scale:g}'), log=None)
    kind = next(iter(held['held_out']))
    rows.append({'scale': scale, 'error_mm': true['error_mm'], 'jaw_deg': true.get('jaw_deg'),
                 'held_out_rms': held['held_out'][kind]['rms'],
                 'held_out_denoised_rms': held['held_out'][kind]['denoised_rms']})
    log(f'{name} {condition.name} scale {scale:g}: true {true["error_mm"]:.3f} mm, held-out rms '
        f'{rows[-1]["held_out_rms"]:.3f} (denoised {rows[-1]["held_out_denoised_rms"]:.3f})')
  by_true = int(np.argmin([r['error_mm'] for r in rows]))
  by_held = int(np.argmin([r['held_out_rms'] for r in rows]))
  return {'rows': rows, 'best_by_truth': scales[by_true], 'picked_by_held_out': scales[by_held],
          'picked_over_best': rows[by_held]['error_mm'] / rows[by_true]['error_mm']}


def _counts(sweep: dict) -> list:
  return [n for n in (30, 60, 150, 300) if f'markers{n}_noise0.3mm_drop5' in sweep]


def plot(path: str, results: dict):
  """Error against marker count per method, one panel per actor with a marker-count sweep."""
  import matplotlib  # noqa: PLC0415  (only the plot needs it)
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # noqa: PLC0415
  names = [n for n, a in results['actors'].items() if len(_counts(a.get('sweep', {}))) > 1]
  if not names:
    return
  fig, axes = plt.subplots(1, len(names), figsize=(4.8 * len(names), 3.6), squeeze=False)
  for ax, name in zip(axes[0], names):
    sweep = results['actors'][name]['sweep']
    counts = _counts(sweep)
    rows = [sweep[f'markers{n}_noise0.3mm_drop5'] for n in counts]
    for method in rows[-1]:
      ax.plot(counts, [r.get(method, {}).get('error_mm', np.nan) for r in rows], marker='o',
              label=method)
    ax.set_xscale('log')
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.minorticks_off()
    ax.set_xlabel('markers (0.3 mm noise, 5 % dropouts)')
    ax.set_ylabel('mean vertex error (mm)')
    ax.set_title(f'{name}: {results["frames"]} held-out frames')
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  config = base_config()
  results = {'machine': f'{platform.node()} ({platform.processor() or platform.machine()}, '
                        f'{os.cpu_count()} cores)',
             'frames': _FRAMES.value, 'steps': _STEPS.value, 'folds': _FOLDS.value,
             'seed': _SEED.value, 'config_overrides': _CONFIG_OVERRIDES.value,
             'fit_config': {'coefficient_smooth': config.loss.coefficient_smooth,
                            'coefficient_shrink': config.loss.coefficient_shrink},
             'actors': {}}
  if os.path.exists(_OUT.value):
    with open(_OUT.value) as f:
      previous = json.load(f)
    if previous.get('frames') == _FRAMES.value and previous.get('steps') == _STEPS.value:
      results['actors'] = previous.get('actors', {})
  for entry in _MODELS.value:
    name, model, truth, generic = load(entry)
    actor = results['actors'].setdefault(name, {})
    conditions = ([parse_condition(c) for c in _CONDITIONS.value]
                  or sweep_conditions(_SWEEP.value))
    actor['sweep'] = {**actor.get('sweep', {}),
                      **run_sweep(config, name, model, truth, conditions, print, generic)}
    study = actor.setdefault('study', {})
    for condition_name in _STUDY.value:
      if condition_name:
        study[condition_name] = run_study(config, name, model, truth,
                                          parse_condition(condition_name), print)
    files.write_json(_OUT.value, results)
  pairs = [(r['held_out_rms'], r['error_mm']) for a in results['actors'].values()
           for s in a.get('study', {}).values() for r in s['rows']]
  if len(pairs) > 2:
    held, true = np.asarray(pairs).T
    results['held_out_vs_true_correlation'] = float(np.corrcoef(held, true)[0, 1])
  files.write_json(_OUT.value, results)
  if any(a.get('sweep') for a in results['actors'].values()):
    plot(os.path.splitext(_OUT.value)[0] + '.png', results)
  print(json.dumps({k: v for k, v in results.items() if k != 'actors'}, indent=1))


if __name__ == '__main__':
  app.run(main)
