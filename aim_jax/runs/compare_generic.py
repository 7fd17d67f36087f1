"""AIM, AIM-global, GBS and a generic linear 3DMM fitted to an ICT actor's held-out performance:
what `experiments/compare_generic.py` runs, as one library call.

For each target kind of `config.kinds` (dense targets, sparse 3D markers made from
`<actor_dir>/performance.npz`) fits the methods of `config.fit` with `runs.fit.fit_and_report`
into `<workdir>/<kind>/`, and the generic 3DMM (truncated ICT identity PCA + the 53 ICT
expressions; it does not know the actor's identity) for each K of
`config.generic.identity_components` into `<workdir>/<kind>/generic_K<k>/fit.npz`. Writes
`<workdir>/comparison.json`, `comparison.md` and `renders/comparison.png`. A rerun resumes the
AIM fits.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional

import ml_collections
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import files, model_dir
from aim_jax import workdir as workdir_lib
from aim_jax.data import ActorError, ict
from aim_jax.data import folder as folder_lib
from aim_jax.fitting import comparison
from aim_jax.fitting import generic_model as gm
from aim_jax.fitting import methods as methods_lib
from aim_jax.runs import fit as fit_run
from aim_jax.runs import reporting


def _names(text: str) -> List[str]:
  return [t.strip() for t in str(text).split(',') if t.strip()]


def identity_counts(config: ml_collections.ConfigDict) -> List[int]:
  """The sorted identity mode counts K of `config.generic.identity_components`; ValueError
  naming the field otherwise."""
  try:
    counts = sorted({int(k) for k in _names(config.generic.identity_components)})
  except ValueError:
    raise ValueError('config.generic.identity_components: expected comma-separated integers, '
                     f'got {config.generic.identity_components!r}') from None
  if not counts:
    raise ValueError('config.generic.identity_components: no identity mode count')
  return counts


def run_compare_generic(config: ml_collections.ConfigDict, actor_dir: str, model_path: str,
                        ict_path: str, workdir: str,
                        log: Optional[Callable[[str], None]] = print) -> Dict:
  """Fits and compares every method on the actor's performance; returns comparison.json's dict.

  Args:
    config: configs/compare_generic.py.
    actor_dir: a prepared ICT actor folder (with performance.npz and bone_report.json).
    model_path: a model directory learned on that actor.
    ict_path: ICT-FaceKit npz or FaceXModel folder.
    workdir: where fits and the comparison go.
  Raises:
    ActorError, FileNotFoundError, ValueError: bad input, one line naming the file.
  """
  workdir_lib.check_usable(workdir)
  with workdir_lib.Lock(workdir, log):
    return _run_compare_generic(config, actor_dir, model_path, ict_path, workdir, log)


def _run_compare_generic(config: ml_collections.ConfigDict, actor_dir: str, model_path: str,
                        ict_path: str, workdir: str,
                        log: Optional[Callable[[str], None]] = print) -> Dict:
  say = log or (lambda line: None)
  actor = folder_lib.load_actor(actor_dir)
  truth = comparison.load_performance(actor_dir, actor.num_vertices)
  model = model_dir.load_fit_model(model_path, actor=actor)
  learned = model.info['actor']['num_vertices']
  if learned != actor.num_vertices:
    raise ActorError(f'{model_path}: learned on {learned} vertices, {actor_dir} has '
                     f'{actor.num_vertices}')
  vertex_ids = gm.ict_actor_vertex_ids(actor_dir, actor.num_vertices)
  counts = identity_counts(config)
  full = gm.from_ict(ict.load_ict_model(ict_path), vertex_ids, counts[-1])
  generics = {comparison.generic_name(k): gm.truncate(full, k) for k in counts}
  methods = methods_lib.parse_methods(config.fit)
  g = config.generic

  result = {'actor': actor.name, 'num_frames': int(truth['frames'].shape[0]),
            'num_markers': config.num_markers, 'identity_components': counts,
            'error_against': 'ground_truth', 'error_mm': {}, 'jaw': {}, 'seconds': {},
            'generic': {'identity_prior': g.identity_prior,
                        'expression_ridge': g.expression_ridge, 'identity': {}}}
  results = {}
  for kind in _names(config.kinds):
    targets = comparison.performance_targets(actor, truth['frames'], kind, config.num_markers,
                                             config.marker_seed)
    kind_dir = os.path.join(workdir, kind)
    report = fit_run.fit_and_report(config.fit, model, targets, truth, kind_dir, log=log)
    results[kind] = {}
    for method in methods:
      with np.load(os.path.join(kind_dir, method, 'fit.npz')) as data:
        results[kind][method] = {'frames': data['frames']}
    fits, seconds = comparison.fit_generic_models(generics, targets, g.identity_prior,
                                                  g.expression_ridge)
    for name, fit in fits.items():
      files.write_npz(os.path.join(kind_dir, name, 'fit.npz'), **fit)
    evaluation = methods_lib.evaluate_methods(fits, truth, targets, actor)
    results[kind].update(fits)
    result['error_mm'][kind] = {**report['error_mm'], **evaluation['error_mm']}
    result['jaw'][kind] = report['jaw']
    result['seconds'][kind] = {**report['seconds_this_run'], **seconds}
    result['generic']['identity'][kind] = {n: f['identity'].tolist() for n, f in fits.items()}
    for name in fits:
      say(reporting.error_line(f'{kind} {name:10s}', evaluation['error_mm'][name], width=0,
                               note=f'({seconds[name]:.2f} s)'))

  floors = comparison.identity_floors(generics, actor)
  result['identity_floor_mm'] = {n: eval_lib.stats(f[actor.region]) for n, f in floors.items()}
  frame = config.render_frame
  if frame < 0:
    frame = comparison.expressive_frame(truth['frames'], actor.neutral, actor.region)
  result['render_frame'] = frame
  render = comparison.render_comparison(
      os.path.join(workdir, 'renders', 'comparison.png'), actor, truth, results, frame, floors,
      methods + list(generics))
  result['render'] = render
  files.write_json(os.path.join(workdir, 'comparison.json'), result)
  table = comparison.markdown_table(result)
  files.write_text(os.path.join(workdir, 'comparison.md'), table)
  say(table)
  say(f'wrote {os.path.join(workdir, "comparison.json")}, comparison.md and {render}')
  return result
