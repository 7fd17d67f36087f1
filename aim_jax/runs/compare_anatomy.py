"""The anatomy comparison run: what `experiments/compare_anatomy.py` runs, as one library call.

Several models of one actor (e.g. learned before and after a change of the learning config) ->
their anatomy-quality figures side by side (`anatomy_quality`: left-right asymmetry, flipped
anatomy-surface triangles, thickness roughness, Rhine depths; with ground truth, the dense
errors too) in comparison.json and comparison.md, and renders/anatomy_comparison.png: one row
per model and a reference row (the ground truth when the actor has it, else the actor's bone
meshes by closest point, for ICT actors the fitted template bones).
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence

import numpy as np

from aim_jax import anatomy_quality as quality_lib
from aim_jax import files, viz
from aim_jax import model_dir as model_dir_lib
from aim_jax import workdir as workdir_lib
from aim_jax.anatomy import depths as depths_lib
from aim_jax.data.actor import Actor
from aim_jax.models import aim


def reference_fields(actor: Actor) -> Dict:
  """The row the models are read against: 'label', 'bone' (V, 3) mm, 'thickness' (V,) mm and
  'normal' (V, 3) or None: the ground truth when known, else the actor's bone meshes by closest
  point (`depths.closest_bone_fields`)."""
  gt = actor.ground_truth
  if gt is not None:
    return {'label': 'ground truth', 'bone': gt.bone_point, 'thickness': gt.thickness,
            'normal': gt.bone_normal}
  bone, depth = depths_lib.closest_bone_fields(actor)
  return {'label': 'bone meshes', 'bone': bone, 'thickness': depth,
          'normal': None}


def render_comparison(path: str, actor: Actor, rows: Sequence[Dict], title: str) -> str:
  """A PNG grid, one row per entry of `rows` ('label', 'bone', 'thickness', optional 'normal'):
  thickness on the skin, the anatomy surface coloured by thickness (front and side), the
  thickness asymmetry |D(i) - D(mirror i)|, and the anatomy normals."""
  top = max(float(np.percentile(r['thickness'], 99)) for r in rows)
  asym = [quality_lib.scalar_asymmetry_map(r['thickness'], actor.symmetry) for r in rows]
  asym_top = max(1.0, max(float(np.percentile(a, 99)) for a in asym))
  faces = actor.faces
  panels = []
  for row, asymmetry in zip(rows, asym):
    label = row['label']
    panels += [
        dict(vertices=actor.neutral, faces=faces, values=row['thickness'], cmap='magma',
             vmin=0.0, vmax=top, title=f'{label}: thickness', label='mm'),
        dict(vertices=row['bone'], faces=faces, values=row['thickness'], cmap='magma',
             vmin=0.0, vmax=top, title=f'{label}: anatomy', label='thickness mm'),
        dict(vertices=row['bone'], faces=faces, values=row['thickness'], cmap='magma',
             vmin=0.0, vmax=top, title='anatomy, side', label='thickness mm', view='side'),
        dict(vertices=actor.neutral, faces=faces, values=asymmetry, cmap='inferno', vmin=0.0,
             vmax=asym_top, title='thickness asymmetry', label='|D - D mirrored| mm'),
        (dict(vertices=actor.neutral, faces=faces, colors=viz.normal_colors(row['normal']),
              title='anatomy normals') if row.get('normal') is not None else
         dict(vertices=actor.neutral, faces=faces, title='(no normals)')),
    ]
  return viz.render_grid(path, panels, ncols=5, panel_px=(260, 320), title=title)


def _mean(value):
  return value['mean'] if isinstance(value, dict) else value


def comparison_table(figures: Dict[str, Dict]) -> List[str]:
  """Markdown lines: one row per model (and the reference) of the anatomy-quality figures."""
  head = ['model', 'thickness asymmetry mm (mean / p95)', 'bone asymmetry mm', 'flipped %',
          'thickness roughness mm', 'Rhine depth error mm']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for label, f in figures.items():
    rhine = f.get('rhine_depth')
    asymmetry = f['thickness_asymmetry_mm']
    cells = [label, f'{asymmetry["mean"]:.2f} / {asymmetry["p95"]:.2f}',
             f'{_mean(f["bone_asymmetry_mm"]):.2f}', f'{f["flipped_triangles_percent"]:.3f}',
             f'{f["thickness_roughness_mm"]:.3f}',
             '-' if rhine is None else f'{rhine["mean_abs_error_mm"]:.2f}']
    lines.append('| ' + ' | '.join(cells) + ' |')
  return lines


def run_comparison(model_dirs: Sequence[str], labels: Sequence[str], workdir: str,
                   log=print) -> Dict:
  """Compares the anatomy of models of one actor; writes comparison.json, comparison.md and
  renders/anatomy_comparison.png to `workdir`. Returns {label: figures}, the reference's under
  its own label."""
  if len(model_dirs) != len(labels) or not model_dirs:
    raise ValueError(f'expected one label per model directory, got {len(model_dirs)} '
                     f'directories and {len(labels)} labels')
  if len(set(labels)) != len(labels):
    raise ValueError(f'labels must differ, got {list(labels)}')
  log = log or (lambda line: None)
  models = [model_dir_lib.load_model(d) for d in model_dirs]
  actor = model_dir_lib.actor_of_model(models[0].info)
  for d, m in zip(model_dirs[1:], models[1:]):
    other = model_dir_lib.actor_of_model(m.info)
    if other.num_vertices != actor.num_vertices or not np.allclose(other.neutral, actor.neutral):
      raise ValueError(f'{d}: a model of another actor ({other.name}, {other.num_vertices} '
                       f'vertices) than {model_dirs[0]} ({actor.name}); compare models of one '
                       'actor')
  workdir_lib.check_usable(workdir)
  with workdir_lib.Lock(workdir, log):
    rows, figures = [], {}
    for label, m in zip(labels, models):
      fields = aim.evaluate_chunked(m.params, actor.neutral, m.spec, edit=m.edit)
      fields = {k: np.asarray(v) for k, v in fields.items()}
      rows.append({'label': label, 'bone': fields['bone'], 'thickness': fields['thickness'],
                   'normal': fields['normal']})
      figures[label] = quality_lib.field_quality(fields['bone'], fields['thickness'], actor)
      log(f'{label}: thickness asymmetry {figures[label]["thickness_asymmetry_mm"]["mean"]:.2f}'
          f' mm, flipped {figures[label]["flipped_triangles_percent"]:.3f} %')
    reference = reference_fields(actor)
    figures[reference['label']] = quality_lib.field_quality(reference['bone'],
                                                            reference['thickness'], actor)
    rows.append(reference)
    files.write_json(os.path.join(workdir, 'comparison.json'),
                     {'models': dict(zip(labels, model_dirs)), 'figures': figures})
    files.write_text(os.path.join(workdir, 'comparison.md'),
                     '\n'.join([f'# Anatomy of {actor.name}', ''] + comparison_table(figures))
                     + '\n')
    render_comparison(os.path.join(workdir, 'renders', 'anatomy_comparison.png'), actor, rows,
                      title=f'{actor.name}: ' + ' / '.join(labels) + f' / {reference["label"]}')
    return figures
