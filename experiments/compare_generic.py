r"""AIM, AIM-global, GBS and a generic linear 3DMM fitted to an ICT actor's held-out performance.

  python experiments/compare_generic.py --actor_dir=workdirs/ict0_actor \
      --model_dir=workdirs/ict0_model --ict_path=path/to/ict_facekit_light.npz \
      --workdir=workdirs/ict0_compare --identity_components=20,50 --num_markers=150

For dense targets and for sparse 3D markers made from `<actor_dir>/performance.npz`, fits the
methods of `--config` (configs/fit.py) with `pipeline.fit_and_report` into `<workdir>/<kind>/`,
and the generic 3DMM (truncated ICT identity PCA + the 53 ICT expressions; it does not know the
actor's identity) for each K of --identity_components. Writes `<workdir>/comparison.json`,
`comparison.md` and `renders/comparison.png`. A rerun resumes the AIM fits.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from aim_jax import eval as eval_lib
from aim_jax.data import ActorError
from aim_jax.data import folder as folder_lib
from aim_jax.data import ict
from aim_jax.fitting import comparison
from aim_jax.fitting import generic_model as gm
from aim_jax.fitting import pipeline

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/fit.py',
                                          'Fitting configuration file.', lock_config=True)
_ACTOR_DIR = flags.DEFINE_string('actor_dir', None, 'A prepared ICT actor folder.',
                                 required=True)
_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'A learn_model.py workdir of that actor.',
                                 required=True)
_ICT_PATH = flags.DEFINE_string('ict_path', None, 'ICT-FaceKit npz or FaceXModel folder.',
                                required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where fits and the comparison go.',
                               required=True)
_COMPONENTS = flags.DEFINE_list('identity_components', ['20', '50'],
                                'Identity modes K of each generic model.')
_NUM_MARKERS = flags.DEFINE_integer('num_markers', 150, 'Sparse 3D markers.')
_MARKER_SEED = flags.DEFINE_integer('marker_seed', 0, 'Seed of the marker placement.')
_KINDS = flags.DEFINE_list('kinds', list(comparison.TARGET_KINDS), 'Target kinds compared.')
_IDENTITY_PRIOR = flags.DEFINE_float('identity_prior', 1e-4,
                                     'Generic 3DMM: weight of |a|^2 (mm^2 per unit^2).')
_EXPRESSION_RIDGE = flags.DEFINE_float('expression_ridge', 1e-4,
                                       'Generic 3DMM: weight of |b_j|^2 (mm^2 per unit^2).')
_FRAME = flags.DEFINE_integer('render_frame', -1,
                              'Frame rendered (-1: the one farthest from the neutral).')


def _save_npz(path, arrays):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez_compressed(path, **arrays)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  config = _CONFIG.value
  log = lambda line: print(line, flush=True)
  workdir = _WORKDIR.value
  try:
    actor = folder_lib.load_actor(_ACTOR_DIR.value)
    truth = comparison.load_performance(_ACTOR_DIR.value, actor.num_vertices)
    model = pipeline.load_fit_model(_MODEL_DIR.value, actor=actor)
    learned = model.info['actor']['num_vertices']
    if learned != actor.num_vertices:
      raise ActorError(f'{_MODEL_DIR.value}: learned on {learned} vertices, '
                       f'{_ACTOR_DIR.value} has {actor.num_vertices}')
    vertex_ids = gm.ict_actor_vertex_ids(_ACTOR_DIR.value, actor.num_vertices)
    counts = sorted({int(k) for k in _COMPONENTS.value})
    full = gm.from_ict(ict.load_ict_model(_ICT_PATH.value), vertex_ids, counts[-1])
  except (ActorError, ValueError, FileNotFoundError) as err:
    raise SystemExit(f'error: {err}') from None
  generics = {comparison.generic_name(k): gm.truncate(full, k) for k in counts}
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]

  result = {'actor': actor.name, 'num_frames': int(truth['frames'].shape[0]),
            'num_markers': _NUM_MARKERS.value, 'identity_components': counts,
            'error_against': 'ground_truth', 'error_mm': {}, 'jaw': {}, 'seconds': {},
            'generic': {'identity_prior': _IDENTITY_PRIOR.value,
                        'expression_ridge': _EXPRESSION_RIDGE.value, 'identity': {}}}
  results = {}
  for kind in _KINDS.value:
    targets = comparison.performance_targets(actor, truth['frames'], kind, _NUM_MARKERS.value,
                                             _MARKER_SEED.value)
    kind_dir = os.path.join(workdir, kind)
    report = pipeline.fit_and_report(config, model, targets, truth, kind_dir, log=log)
    results[kind] = {}
    for method in methods:
      with np.load(os.path.join(kind_dir, method, 'fit.npz')) as data:
        results[kind][method] = {'frames': data['frames']}
    fits, seconds = comparison.fit_generic_models(generics, targets, _IDENTITY_PRIOR.value,
                                                  _EXPRESSION_RIDGE.value)
    for name, fit in fits.items():
      _save_npz(os.path.join(kind_dir, name, 'fit.npz'), fit)
    evaluation = pipeline.evaluate_methods(fits, truth, targets, actor)
    results[kind].update(fits)
    result['error_mm'][kind] = {**report['error_mm'], **evaluation['error_mm']}
    result['jaw'][kind] = report['jaw']
    result['seconds'][kind] = {**report['seconds_this_run'], **seconds}
    result['generic']['identity'][kind] = {n: f['identity'].tolist() for n, f in fits.items()}
    for name in fits:
      s = evaluation['error_mm'][name]
      log(f'  {kind} {name:10s} mean {s["mean"]:.4f} mm  median {s["median"]:.4f} mm  '
          f'p95 {s["p95"]:.4f} mm  ({seconds[name]:.2f} s)')

  floors = comparison.identity_floors(generics, actor)
  result['identity_floor_mm'] = {n: eval_lib.stats(f[actor.region]) for n, f in floors.items()}
  frame = _FRAME.value
  if frame < 0:
    frame = comparison.expressive_frame(truth['frames'], actor.neutral, actor.region)
  result['render_frame'] = frame
  render = comparison.render_comparison(
      os.path.join(workdir, 'renders', 'comparison.png'), actor, truth, results, frame, floors,
      methods + list(generics))
  result['render'] = render
  with open(os.path.join(workdir, 'comparison.json'), 'w', encoding='utf-8') as f:
    json.dump(result, f, indent=1)
  table = comparison.markdown_table(result)
  with open(os.path.join(workdir, 'comparison.md'), 'w', encoding='utf-8') as f:
    f.write(table)
  log(table)
  log(f'wrote {os.path.join(workdir, "comparison.json")}, comparison.md and {render}')


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  app.run(main)
