"""AIM against a generic 3DMM on an ICT actor's held-out performance (B.6, the "must show" runs).

What `experiments/compare_generic.py` runs, as library calls: the performance written with an ICT
actor (`performance.npz`) as ground truth, dense 3D or sparse 3D marker targets made from it,
the generic 3DMM fits (`generic_model.fit_generic`) of each identity truncation, and the
comparison outputs (a json dict, a markdown table and an error-map render of one frame).
AIM, AIM-global and GBS are fitted by `runs.fit.fit_and_report` as usual.
"""

from __future__ import annotations

import os
import time
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import viz
from aim_jax.data.actor import Actor
from aim_jax.fitting import generic_model as gm
from aim_jax.fitting import synthetic_targets
from aim_jax.fitting import targets as targets_lib

TARGET_KINDS = ('dense', 'markers')


def load_performance(actor_dir: str, num_vertices: int) -> Dict[str, np.ndarray]:
  """Ground truth of an ICT actor's held-out performance.

  Returns:
    {'frames': (F, V, 3) float32 mm, 'jaw_rotation': (F, 3, 3),
     'jaw_translation': (F, 3) mm (about the actor's pivot)}.
  Raises:
    ValueError: one line naming the file if it is missing or has the wrong vertex count.
  """
  file = os.path.join(actor_dir, 'performance.npz')
  try:
    with np.load(file, allow_pickle=False) as data:
      truth = {k: np.asarray(data[k], np.float32)
               for k in ('frames', 'jaw_rotation', 'jaw_translation')}
  except (OSError, KeyError, ValueError) as err:
    raise ValueError(f'{file}: cannot read the performance ({type(err).__name__}: '
                     f'{" ".join(str(err).split())}); prepare the actor with '
                     'config.ict.performance_frames > 0') from None
  if truth['frames'].ndim != 3 or truth['frames'].shape[1:] != (num_vertices, 3):
    raise ValueError(f'{file}: frames have shape {truth["frames"].shape}, the actor has '
                     f'{num_vertices} vertices')
  return truth


def performance_targets(actor: Actor, frames: np.ndarray, kind: str, num_markers: int = 150,
                        seed: int = 0) -> Dict[str, targets_lib.TargetSet]:
  """{kind: TargetSet}: dense targets on the actor's region, or `num_markers` markers at spread
  barycentric points of the region's triangles (noise-free), from frames (F, V, 3) mm."""
  if kind == 'dense':
    return {'dense': targets_lib.dense_targets(frames, actor.region, source=actor.name)}
  if kind == 'markers':
    return {'markers': synthetic_targets.markers(actor.neutral, actor.faces, actor.region, frames,
                                                 count=num_markers, seed=seed)}
  raise ValueError(f'target kind must be one of {TARGET_KINDS}, got {kind!r}')


def generic_name(num_identity: int) -> str:
  return f'generic_k{int(num_identity)}'


def fit_generic_models(models: Mapping[str, gm.GenericModel],
                       targets: Mapping[str, targets_lib.TargetSet], identity_prior: float,
                       expression_ridge: float) -> tuple:
  """Fits every generic model to the targets.

  Returns:
    ({name: {'frames' (F, V, 3) mm, 'identity' (K,), 'expression' (F, E)}}, {name: seconds}).
  """
  results, seconds = {}, {}
  for name, model in models.items():
    start = time.perf_counter()
    fit = gm.fit_generic(model, targets, identity_prior, expression_ridge)
    seconds[name] = time.perf_counter() - start
    results[name] = {'frames': fit.frames, 'identity': fit.identity,
                     'expression': fit.expression}
  return results, seconds


def identity_floors(models: Mapping[str, gm.GenericModel], actor: Actor) -> Dict[str, Dict]:
  """{name: per-vertex error (V,) mm} of the best identity-only fit of each model to the actor's
  neutral (no prior): what no expression coefficients can fix."""
  return {name: gm.reachable_neutral(model, actor.neutral, actor.region)['error_mm']
          for name, model in models.items()}


def _cell(stats: Optional[Dict]) -> str:
  if not stats:
    return '-'
  return f'{stats["mean"]:.3f} / {stats["median"]:.3f} / {stats["p95"]:.3f}'


def _jaw_cell(jaw: Optional[Dict]) -> str:
  if not jaw:
    return '-'
  return f'{jaw["rotation_deg"]["mean"]:.2f} deg / {jaw["displacement_mm"]["mean"]:.2f} mm'


def markdown_table(comparison: Dict) -> str:
  """The comparison as a markdown table: method x {dense, markers} error (mean / median / p95
  mm) and mean jaw errors (AIM methods), plus the generic models' identity floors."""
  kinds = [k for k in TARGET_KINDS if k in comparison['error_mm']]
  methods = []
  for kind in kinds:
    methods += [m for m in comparison['error_mm'][kind] if m not in methods]
  header = ['method'] + [f'{k} error mm (mean / median / p95)' for k in kinds] + \
           [f'jaw, {k} (rotation / displacement)' for k in kinds]
  lines = [f'{comparison["actor"]}: {comparison["num_frames"]} held-out frames, errors against '
           f'the ground truth on the actor\'s region ({comparison["num_markers"]} markers).', '',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for method in methods:
    row = [method] + [_cell(comparison['error_mm'][k].get(method)) for k in kinds]
    row += [_jaw_cell(comparison['jaw'].get(k, {}).get(method)) for k in kinds]
    lines.append('| ' + ' | '.join(row) + ' |')
  floors = comparison.get('identity_floor_mm', {})
  if floors:
    lines += ['', 'Identity floor (best identity-only fit of the actor\'s neutral, no prior): ' +
              ', '.join(f'{m} {_cell(s)} mm' for m, s in floors.items()) + '.']
  return '\n'.join(lines) + '\n'


def expressive_frame(frames: np.ndarray, neutral: np.ndarray, region: np.ndarray) -> int:
  """The frame (F, V, 3) farthest from the neutral on average over the region: a frame with a
  lot going on, for renders."""
  motion = eval_lib.vertex_errors(frames, np.asarray(neutral)[None])[:, region].mean(axis=1)
  return int(np.argmax(motion))


def render_comparison(path: str, actor: Actor, truth: Dict, results: Mapping[str, Mapping],
                      frame: int, floors: Mapping[str, np.ndarray],
                      methods: Sequence[str]) -> str:
  """PNG: one row per target kind (target frame, then each method's per-vertex error at
  `frame`), and a last row with the generic models' identity floors on the neutral and their
  dense errors averaged over the sequence (where they miss the individual's shape).

  Args:
    results: {kind: {method: {'frames': (F, V, 3) mm}}}.
    floors: {generic method: (V,) mm} from `identity_floors`.
  """
  target = truth['frames'][frame]
  errors = {kind: {m: eval_lib.vertex_errors(r[m]['frames'][frame], target)
                   for m in methods if m in r} for kind, r in results.items()}
  shown = np.concatenate([e[actor.region] for per in errors.values() for e in per.values()])
  vmax = max(0.5, float(np.percentile(shown, 99)))
  panels = []
  for kind, per in errors.items():
    panels.append(dict(vertices=target, faces=actor.faces, title=f'{kind}: frame {frame}'))
    for method, error in per.items():
      panels.append(dict(vertices=results[kind][method]['frames'][frame], faces=actor.faces,
                         values=error, cmap='inferno', vmin=0.0, vmax=vmax, label='error mm',
                         title=f'{method} ({error[actor.region].mean():.3f} mm)'))
  ncols = 1 + max(len(per) for per in errors.values())
  last = [dict(vertices=actor.neutral, faces=actor.faces, title='actor neutral')]
  floor_max = max([0.5] + [float(np.percentile(f[actor.region], 99)) for f in floors.values()])
  for name, floor in floors.items():
    last.append(dict(vertices=actor.neutral, faces=actor.faces, values=floor, cmap='inferno',
                     vmin=0.0, vmax=floor_max, label='error mm',
                     title=f'{name}: identity floor ({floor[actor.region].mean():.2f} mm)'))
  dense = results.get('dense', {})
  for name in floors:
    if name in dense:
      mean_error = eval_lib.vertex_errors(dense[name]['frames'], truth['frames']).mean(axis=0)
      last.append(dict(vertices=actor.neutral, faces=actor.faces, values=mean_error,
                       cmap='inferno', vmin=0.0, vmax=floor_max, label='error mm',
                       title=f'{name} dense: mean over frames'))
  panels += last[:ncols]
  return viz.render_grid(path, panels, ncols=ncols,
                         title=f'{actor.name}: per-vertex error, frame {frame} '
                               f'(last row: where the generic model cannot reach the identity)')
