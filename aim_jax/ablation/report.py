"""The ablation report: results.csv, report.md, bar charts, the hidden-size trade-off plot and
side-by-side renders of the learned anatomy per variant.

Everything is computed from the jobs' result.json files; rows whose jobs have not finished are
reported as missing, never filled in. The one number measured for the report, the hidden sizes'
evaluation times side by side, is measured (`timing.py`) before the report is written
(`report`), not while writing it (`write_report`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
from typing import Dict, List, Optional, Sequence

import ml_collections
import numpy as np

from aim_jax import files, viz
from aim_jax.ablation import runner as runner_lib
from aim_jax.ablation import studies as studies_lib
from aim_jax.ablation import timing
from aim_jax.data.actor import Actor

ANATOMY_COLUMNS = (('bone_mm', 'bone mm'), ('thickness_mm', 'thickness mm'),
                   ('normal_deg', 'normals deg'), ('skinning', 'skinning'))
# Anatomy quality with or without ground truth (`anatomy_quality.field_quality`): key in the
# learned model's figures, column label, digits.
QUALITY_COLUMNS = (('thickness_asymmetry_mm', 'thickness asym. mm', 2),
                   ('bone_asymmetry_mm', 'bone asym. mm', 2),
                   ('flipped_triangles_percent', 'flipped %', 2),
                   ('thickness_roughness_mm', 'thickness rough. mm', 3),
                   ('rhine_depth', 'Rhine depth error mm', 2))


@dataclasses.dataclass
class RowResult:
  """A table row with its per-seed results.

  Attributes:
    row: the study row.
    seeds: the seeds with a finished job.
    errors: (n,) mean fitting error (mm) per seed.
    results: the jobs' result dicts, by seed.
  """
  row: studies_lib.Row
  seeds: List[int]
  errors: np.ndarray
  results: List[Dict]

  @property
  def mean(self) -> float:
    return float(self.errors.mean()) if len(self.errors) else float('nan')

  @property
  def std(self) -> float:
    return float(self.errors.std(ddof=1)) if len(self.errors) > 1 else float('nan')

  def mean_of(self, get) -> float:
    values = [get(r) for r in self.results]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float('nan')


def collect(config: ml_collections.ConfigDict, studies: Sequence[str],
            jobs: Sequence[runner_lib.Job]) -> List[RowResult]:
  """Every row of the studies with the finished jobs' results."""
  by_key = {(job.run, job.seed): job for job in jobs}
  out = []
  for row in studies_lib.rows(config, studies):
    seeds, errors, results = [], [], []
    for seed in studies_lib.seeds_of(config, row.study):
      job = by_key.get((row.run, seed))
      result = runner_lib.read_result(job) if job is not None else None
      fit = (result or {}).get('fits', {}).get(str(row.num_frames), {})
      error = fit.get('error_mm', {}).get(row.method)
      if error is None:
        continue
      seeds.append(seed)
      errors.append(error['mean'])
      results.append(result)
    out.append(RowResult(row, seeds, np.asarray(errors, np.float64), results))
  return out


def _anatomy(result: Dict, name: str, subset: str = 'unconstrained') -> Optional[float]:
  anatomy = result.get('anatomy')
  return None if anatomy is None else anatomy[name][subset]['mean']


def _quality(result: Dict, name: str) -> Optional[float]:
  """One anatomy-quality figure of a job's model: a statistic's mean, the Rhine landmarks' mean
  absolute depth error; None for results written before them or actors without landmarks."""
  value = (result.get('anatomy_quality') or {}).get(name)
  if isinstance(value, dict):
    return value.get('mean', value.get('mean_abs_error_mm'))
  return value


def _jaw(result: Dict, row: studies_lib.Row) -> Optional[float]:
  jaw = result['fits'][str(row.num_frames)].get('jaw', {}).get(row.method)
  return None if jaw is None else jaw['rotation_deg']['mean']


def write_csv(path: str, rows: Sequence[RowResult]):
  """One line per (row, seed): the fitting error, the paper's number and the anatomy errors."""
  header = ['study', 'variant', 'run', 'method', 'seed', 'num_frames', 'error_mean_mm',
            'error_median_mm', 'error_p95_mm', 'paper_mm', 'jaw_rotation_deg',
            'reconstruction_mm', 'hidden', 'activation', 'num_params', 'eval_ms',
            'learning_steps_per_s']
  for name, _ in ANATOMY_COLUMNS:
    header += [f'{name}_all', f'{name}_unconstrained']
  header += [name for name, _, _ in QUALITY_COLUMNS]
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(header)
  for r in rows:
    for seed, result in zip(r.seeds, r.results):
      error = result['fits'][str(r.row.num_frames)]['error_mm'][r.row.method]
      line = [r.row.study, r.row.label, r.row.run, r.row.method, seed, r.row.num_frames,
              error['mean'], error['median'], error['p95'],
              '' if r.row.paper_mm is None else r.row.paper_mm, _jaw(result, r.row),
              result['reconstruction_mm']['mean'], result['hidden'], result['activation'],
              result['num_params'], result['eval_ms'], result['learning_steps_per_s']]
      for name, _ in ANATOMY_COLUMNS:
        line += [_anatomy(result, name, 'all'), _anatomy(result, name)]
      line += [_quality(result, name) for name, _, _ in QUALITY_COLUMNS]
      writer.writerow(['' if v is None else (f'{v:.6g}' if isinstance(v, float) else v)
                       for v in line])
  files.write_text(path, out.getvalue())


def _fmt(value: float, digits: int = 3) -> str:
  return '-' if value is None or not np.isfinite(value) else f'{value:.{digits}f}'


def _mean_std(r: RowResult) -> str:
  if not len(r.errors):
    return 'not run'
  spread = f' ± {r.std:.3f}' if len(r.errors) > 1 else ''
  return f'{r.mean:.3f}{spread} (n={len(r.errors)})'


def _reference(rows: Sequence[RowResult]) -> Optional[RowResult]:
  for r in rows:
    if r.row.run == studies_lib.FULL and r.row.method == 'aim':
      return r
  return None


def _ranking(rows: Sequence[RowResult]) -> List[str]:
  done = [r for r in rows if len(r.errors)]
  return [r.row.label for r in sorted(done, key=lambda r: r.mean)]


def _separated(a: RowResult, b: RowResult) -> str:
  """Whether two rows differ by more than their spread over seeds."""
  if len(a.errors) < 2 or len(b.errors) < 2:
    return 'one seed only, no spread'
  spread = np.hypot(a.std, b.std)
  gap = abs(a.mean - b.mean)
  return (f'gap {gap:.3f} mm, {gap / spread:.1f}x the combined spread' if spread > 0
          else f'gap {gap:.3f} mm')


def agreement(study: str, rows: Sequence[RowResult]) -> List[str]:
  """Sentences stating where our ordering agrees with the paper's and where it does not."""
  done = [r for r in rows if len(r.errors)]
  if len(done) < 2:
    return ['Too few finished variants to compare orderings.']
  ours = _ranking(rows)
  best, second = sorted(done, key=lambda r: r.mean)[:2]
  lines = [f'Our ranking, best first: {", ".join(ours)}.']
  paper_rows = [r for r in done if r.row.paper_mm is not None]
  if paper_rows:
    paper = [r.row.label for r in sorted(paper_rows, key=lambda r: r.row.paper_mm)]
    ours_among = [label for label in ours if label in paper]
    same = ours_among == paper
    lines.append(f'The paper\'s ranking: {", ".join(paper)}; ours '
                 f'{"agrees" if same else "differs"}.')
  if study == 'activation':
    lines.append(f'Siren best (the paper\'s claim): '
                 f'{"agrees" if best.row.label == "sine" else "disagrees"}; best {best.row.label}'
                 f' against {second.row.label}: {_separated(best, second)}.')
  elif study == 'losses':
    full = _reference(rows)
    worst = max(done, key=lambda r: r.mean)
    other = second if best is full else best
    lines.append(f'Full L_Model best (the paper\'s claim): '
                 f'{"agrees" if best is full else "disagrees"}; L_Model against '
                 f'{other.row.label}: {_separated(full, other)}.')
    lines.append(f'Removing L_A hurts most (the paper\'s claim): '
                 f'{"agrees" if worst.row.label == "no_L_A" else "disagrees"}; worst '
                 f'{worst.row.label}.')
    bone = _anatomy_ranking(done, 'bone_mm')
    if bone:
      lines.append(f'Removing L_A hurts the recovered anatomy most: '
                   f'{"agrees" if bone[-1][0] == "no_L_A" else "disagrees"} (worst bone error '
                   f'{bone[-1][0]}, {bone[-1][1]:.2f} mm; full L_Model '
                   f'{dict(bone).get("L_Model", float("nan")):.2f} mm).')
  elif study == 'hidden':
    by_size = sorted(done, key=lambda r: r.results[0]['hidden'])
    errors = [r.mean for r in by_size]
    times = [r.mean_of(lambda x: x['eval_ms']) for r in by_size]
    lines.append('Error falls as the width grows (the paper\'s Fig. 18): '
                 f'{"agrees" if all(np.diff(errors) <= 0) else "not monotonic"} '
                 f'({", ".join(f"{r.row.label}: {e:.3f} mm" for r, e in zip(by_size, errors))}).')
    lines.append('Evaluation time grows with the width: '
                 f'{"agrees" if all(np.diff(times) >= 0) else "not monotonic"} '
                 f'({", ".join(f"{t:.1f} ms" for t in times)}).')
  elif study == 'baselines':
    by_method = {r.row.method: r for r in done}
    if {'aim', 'gbs'} <= set(by_method):
      ratio = by_method['aim'].mean / by_method['gbs'].mean
      paper = (studies_lib.PAPER_BASELINES_MM['aim'] / studies_lib.PAPER_BASELINES_MM['gbs'])
      lines.append(f'AIM / GBS error ratio: ours {ratio:.2f}, the paper {paper:.2f}.')
    if {'aim', 'aim_global'} <= set(by_method):
      wins = by_method['aim'].mean < by_method['aim_global'].mean
      lines.append('AIM beats AIM-global (per-point coefficients matter): '
                   f'{"agrees" if wins else "disagrees"}.')
  if study != 'baselines':
    for name, label in (('bone_mm', 'bone error'), ('thickness_mm', 'thickness error')):
      ranking = _anatomy_ranking(done, name)
      if ranking:
        lines.append(f'Anatomy recovery ({label} where unconstrained, best first): '
                     + ', '.join(f'{name} {v:.2f}' for name, v in ranking) + '.')
  return lines


def _anatomy_ranking(rows: Sequence[RowResult], name: str) -> List[tuple]:
  """[(label, mean unconstrained error)] best first; [] without anatomy ground truth."""
  values = [(r.row.label, r.mean_of(lambda x: _anatomy(x, name))) for r in rows]
  values = [(label, v) for label, v in values if np.isfinite(v)]
  return sorted(values, key=lambda lv: lv[1])


def _study_table(study: str, rows: Sequence[RowResult]) -> List[str]:
  ref = _reference(rows)
  paper_ref = ref.row.paper_mm if ref is not None else None
  hidden = study == 'hidden'
  head = ['variant', 'ours: mean error mm ± std over seeds', 'ratio to full', 'paper mm',
          'paper ratio', 'jaw deg']
  if hidden:
    head += ['eval ms (side by side)', 'parameters']
  if study != 'baselines':
    head += ['recon mm'] + [f'{label} (unconstr.)' for _, label in ANATOMY_COLUMNS]
    head += [label for _, label, _ in QUALITY_COLUMNS]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    ratio = r.mean / ref.mean if ref is not None and len(ref.errors) and len(r.errors) else None
    paper_ratio = (r.row.paper_mm / paper_ref if r.row.paper_mm is not None and paper_ref
                   else None)
    cells = [r.row.label, _mean_std(r), _fmt(ratio, 2), _fmt(r.row.paper_mm, 2),
             _fmt(paper_ratio, 2), _fmt(r.mean_of(functools.partial(_jaw, row=r.row)), 2)]
    if hidden:
      cells += [_fmt(r.mean_of(lambda x: x['eval_ms']), 1),
                _fmt(r.mean_of(lambda x: x['num_params']), 0)]
    if study != 'baselines':
      cells += [_fmt(r.mean_of(lambda x: x['reconstruction_mm']['mean']))]
      cells += [_fmt(r.mean_of(lambda x, n=name: _anatomy(x, n)), 2)
                for name, _ in ANATOMY_COLUMNS]
      cells += [_fmt(r.mean_of(lambda x, n=name: _quality(x, n)), digits)
                for name, _, digits in QUALITY_COLUMNS]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


TITLES = {
    'activation': 'Table 2: activation in every MLP of the model',
    'losses': 'Table 3: terms of L_Model left out one at a time',
    'hidden': 'Fig. 18: hidden width, error and evaluation time',
    'baselines': 'Table 1: AIM against AIM-global and global blendshapes',
}


def report(workdir: str, config: ml_collections.ConfigDict, studies: Sequence[str],
           jobs: Sequence[runner_lib.Job], actor: Actor, actor_source: str,
           render: bool = True) -> str:
  """Collects the finished jobs, times the hidden sizes side by side (when that study is asked
  for) and writes the report (`write_report`); returns report.md's text."""
  rows = collect(config, studies, jobs)
  eval_ms = None
  if 'hidden' in studies:
    eval_ms = timing.side_by_side_eval_ms(hidden_model_dirs(workdir, rows), actor.neutral)
  return write_report(workdir, config, studies, rows, actor, actor_source, render, eval_ms)


def hidden_model_dirs(workdir: str, rows: Sequence[RowResult]) -> Dict[str, str]:
  """label -> model directory (first finished seed) of each finished hidden-size row."""
  return {r.row.label: os.path.join(runner_lib.job_folder(workdir, r.row.run, r.seeds[0]),
                                    'model')
          for r in rows if r.row.study == 'hidden' and r.results}


def write_report(workdir: str, config: ml_collections.ConfigDict, studies: Sequence[str],
                 rows: Sequence[RowResult], actor: Actor, actor_source: str,
                 render: bool = True, eval_ms: Optional[Dict[str, float]] = None) -> str:
  """Writes results.csv, report.md, plots/ and renders/ under workdir; returns report.md's
  text.

  Args:
    rows: `collect`'s rows.
    eval_ms: label -> evaluation time (ms) measured side by side, replacing in report.md (not in
      results.csv) the times each hidden-size job measured under whatever else ran then.
  """
  os.makedirs(workdir, exist_ok=True)
  write_csv(os.path.join(workdir, 'results.csv'), rows)
  learn = config.learn
  lines = [
      f'# Ablations on actor `{actor.name}` ({actor_source}, {actor.num_vertices} vertices)',
      '',
      f'Learning: hidden {learn.model.hidden}, depth {learn.model.depth}, '
      f'{learn.train.num_steps} steps, {learn.model.activation} activation unless varied. '
      f'Fitting: identical for every variant ({config.fit.model.variant} F_W, '
      f'{config.fit.train.num_steps} steps), {config.targets} targets of the held-out sequence; '
      'errors are mean per-vertex distances to the ground-truth frames (mm). Spread: standard '
      'deviation over seeds (network initialisation, constraint sampling and fitting).',
      '',
  ]
  if actor.ground_truth is not None:
    lines[-2] += (' The anatomy columns are mean errors of the learned fields on vertices '
                  'without a sparse constraint, against the actor\'s ground truth (the paper '
                  'could only show these as pictures).')
  else:
    lines[-2] += ' This actor has no dense anatomy ground truth: the anatomy columns are empty.'
  cost = _cost(rows)
  if cost:
    lines += [cost, '']
  by_study = {s: [r for r in rows if r.row.study == s] for s in studies}
  if 'hidden' in by_study and eval_ms:
    for r in by_study['hidden']:
      if r.row.label in eval_ms:
        r.results = [dict(res, eval_ms=eval_ms[r.row.label]) for res in r.results]
  for study, study_rows in by_study.items():
    lines += [f'## {TITLES[study]}', '']
    lines += _study_table(study, study_rows)
    lines += [''] + [f'- {line}' for line in agreement(study, study_rows)] + ['']
    plot = _plot_study(workdir, study, study_rows)
    if plot:
      lines += [f'![{study}]({os.path.relpath(plot, workdir)})', '']
    if render and study != 'baselines':
      image = render_variants(workdir, study, study_rows, actor)
      if image:
        lines += [f'![{study} anatomy]({os.path.relpath(image, workdir)})', '']
  missing = [f'{r.row.study}/{r.row.label}' for r in rows if not len(r.errors)]
  if missing:
    lines += ['## Not run yet', '', ', '.join(missing), '']
  text = '\n'.join(lines)
  files.write_text(os.path.join(workdir, 'report.md'), text)
  return text


def _cost(rows: Sequence[RowResult]) -> Optional[str]:
  """One line on what a job costs on this machine (learning rate and fitting time)."""
  full = [res for r in rows if r.row.run == studies_lib.FULL for res in r.results]
  if not full:
    return None
  rate = np.median([res['learning_steps_per_s'] for res in full
                    if res.get('learning_steps_per_s')] or [np.nan])
  per_frame = [fit['seconds_per_frame'].get('aim') for res in full
               for fit in res['fits'].values()]
  per_frame = [t for t in per_frame if t is not None]
  return (f'Cost of the full model on this machine: learning {rate:.1f} steps/s, fitting '
          f'{np.median(per_frame) if per_frame else float("nan"):.2f} s per frame (median over '
          'jobs; both include any other load on the machine).')


def _plot_study(workdir: str, study: str, rows: Sequence[RowResult]) -> Optional[str]:
  done = [r for r in rows if len(r.errors)]
  if not done:
    return None
  path = os.path.join(workdir, 'plots', f'{study}.png')
  viz.plot_bars(path, [r.row.label for r in done], [r.mean for r in done],
                errors=[r.std if np.isfinite(r.std) else 0.0 for r in done],
                reference=[np.nan if r.row.paper_mm is None else r.row.paper_mm for r in done],
                reference_label='paper', ylabel='mean fitting error (mm)',
                title=TITLES[study])
  if study == 'hidden':
    viz.plot_tradeoff(os.path.join(workdir, 'plots', 'hidden_tradeoff.png'),
                      [r.mean_of(lambda x: x['eval_ms']) for r in done],
                      [r.mean for r in done], [r.row.label for r in done],
                      xlabel='evaluation of every shape at every vertex (ms)',
                      ylabel='mean fitting error (mm)', title=TITLES[study])
  return path


def render_variants(workdir: str, study: str, rows: Sequence[RowResult],
                    actor: Actor) -> Optional[str]:
  """Learned anatomy, thickness, normals and skinning per variant (first seed), one row each,
  above the ground truth when the actor has one (the paper's Fig. 14 and 16)."""
  panels = []
  fields_of = {}
  for r in rows:
    if not r.results:
      continue
    folder = runner_lib.job_folder(workdir, r.row.run, r.seeds[0])
    with np.load(os.path.join(folder, 'fields.npz')) as data:
      fields_of[r.row.label] = {k: data[k] for k in data.files}
  if not fields_of:
    return None
  gt = actor.ground_truth
  top = max(float(np.percentile(f['thickness'], 99)) for f in fields_of.values())
  if gt is not None:
    top = max(top, float(np.percentile(gt.thickness, 99)))
  rows_of_panels = [(label, f['neutral'], f['bone'], f['thickness'], f['normal'], f['skinning'])
                    for label, f in fields_of.items()]
  if gt is not None:
    rows_of_panels.append(('ground truth', actor.neutral, gt.bone_point, gt.thickness,
                           gt.bone_normal, gt.skinning))
  for label, neutral, bone, thickness, normal, skinning in rows_of_panels:
    panels += [
        dict(vertices=neutral, faces=actor.faces, title=f'{label}: neutral'),
        dict(vertices=bone, faces=actor.faces, values=thickness, cmap='magma', vmin=0.0,
             vmax=top, title=f'{label}: anatomy', label='thickness mm'),
        dict(vertices=neutral, faces=actor.faces, values=thickness, cmap='magma', vmin=0.0,
             vmax=top, title=f'{label}: thickness', label='mm'),
        dict(vertices=neutral, faces=actor.faces, colors=viz.normal_colors(normal),
             title=f'{label}: normals'),
        dict(vertices=neutral, faces=actor.faces, values=skinning, cmap='coolwarm', vmin=0.0,
             vmax=1.0, title=f'{label}: skinning', label='k'),
    ]
  path = os.path.join(workdir, 'renders', f'{study}_anatomy.png')
  return viz.render_grid(path, panels, ncols=5, panel_px=(260, 320),
                         title=f'{TITLES[study]}: learned anatomy per variant (seed '
                               f'{_first_seeds(rows)})')


def _first_seeds(rows: Sequence[RowResult]) -> str:
  seeds = sorted({r.seeds[0] for r in rows if r.seeds})
  return ', '.join(str(s) for s in seeds)
