"""The edit run: what `experiments/edit_anatomy.py` runs, as one library call.

base model directory + edit config -> the edited model directory (`model_dir.write_edited_model`)
with edit_report.json (what the edit did, `edit.edit_report`), meshes/ (every edited shape
coloured by how far it moved, and the neutral before), renders/before_after.png and, when
asked, model.usdc (`usd_export.write_model`).
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import ml_collections
import numpy as np

from aim_jax import edit as edit_lib
from aim_jax import files, mesh_io, usd_export, viz
from aim_jax import model_dir as model_dir_lib
from aim_jax import workdir as workdir_lib
from aim_jax.models import aim


def render_before_after(path: str, before: Dict, after: Dict, faces: np.ndarray,
                        shape_names: Sequence[str], shapes: Sequence[str] = (),
                        view='three_quarter', title: Optional[str] = None) -> str:
  """A PNG grid: per row one shape (the neutral first) before, after, and after coloured by its
  displacement (mm); a last row with the thickness before and after."""
  indices = [0] + [shape_names.index(s) for s in shapes if s in shape_names and s != 'neutral']
  moved = np.linalg.norm(after['shapes'] - before['shapes'], axis=-1)
  vmax = max(0.5, float(moved[indices].max()))
  panels = []
  for i in indices:
    name = shape_names[i]
    panels.append(dict(vertices=before['shapes'][i], faces=faces, title=f'{name}: before',
                       view=view))
    panels.append(dict(vertices=after['shapes'][i], faces=faces, title=f'{name}: after',
                       view=view))
    panels.append(dict(vertices=after['shapes'][i], faces=faces, values=moved[i],
                       cmap='magma', vmin=0.0, vmax=vmax, label='moved mm',
                       title=f'{name}: change (max {moved[i].max():.2f} mm)', view=view))
  tmax = float(max(before['thickness'].max(), after['thickness'].max()))
  panels.append(dict(vertices=before['shapes'][0], faces=faces, values=before['thickness'],
                     vmin=0.0, vmax=tmax, label='thickness mm', title='thickness: before',
                     view=view))
  panels.append(dict(vertices=after['shapes'][0], faces=faces, values=after['thickness'],
                     vmin=0.0, vmax=tmax, label='thickness mm', title='thickness: after',
                     view=view))
  bone = np.linalg.norm(after['bone'] - before['bone'], axis=-1)
  panels.append(dict(vertices=after['shapes'][0], faces=faces, values=bone, cmap='magma',
                     vmin=0.0, vmax=max(0.5, float(bone.max())), label='bone moved mm',
                     title='bone displacement', view=view))
  return viz.render_grid(path, panels, ncols=3, title=title, share_limits=True)


def run_edit(config: ml_collections.ConfigDict, model_dir: str, workdir: str,
             log=print, usd: bool = False) -> Dict:
  """Edits the model in `model_dir`, writes the edited model to `workdir` with its report,
  meshes and before/after renders (with `usd`, model.usdc too). Returns the report."""
  if usd:
    usd_export.require_usd()  # usd-core missing: one line before anything is written.
  workdir_lib.check_usable(workdir)
  with workdir_lib.Lock(workdir, log):
    return _run_edit(config, model_dir, workdir, log, usd)


def _run_edit(config: ml_collections.ConfigDict, model_dir: str, workdir: str,
              log=print, usd: bool = False) -> Dict:
  base = model_dir_lib.load_model(model_dir)
  actor = model_dir_lib.actor_of_model(base.info)
  ops, description = edit_lib.make_ops(config, actor)
  edit = edit_lib.combined_edit(base.edit, ops)
  model_dir_lib.write_edited_model(model_dir, workdir, edit, base.info, description)
  points = np.asarray(actor.neutral, np.float32)
  before = edit_lib.evaluate(base.params, base.spec, points, base.edit)
  after = edit_lib.evaluate(base.params, base.spec, points, edit)
  weight = edit_lib.region_weight(ops, points)
  names = list(base.info['actor']['shape_names'])
  report = {'base_model': model_dir, 'edit': description,
            **edit_lib.edit_report(before, after, weight, base.params, base.spec, names)}
  files.write_json(os.path.join(workdir, 'edit_report.json'), report)
  if usd:
    rotation, translation = (np.asarray(a) for a in aim.jaw_transforms(base.params))
    usd_export.write_model(os.path.join(workdir, 'model.usdc'), actor, after, rotation,
                           translation, np.asarray(base.spec.pivot),
                           metadata={'model_dir': os.path.abspath(workdir)})
  if config.output.meshes:
    folder = os.path.join(workdir, 'meshes')
    os.makedirs(folder, exist_ok=True)
    moved = np.linalg.norm(after['shapes'] - before['shapes'], axis=-1)
    for i, name in enumerate(names):
      mesh_io.write_colored_mesh(os.path.join(folder, f'{i:02d}_{name}.ply'), after['shapes'][i],
                                 actor.faces, viz.scalar_colors(moved[i], cmap='magma', vmin=0.0))
    mesh_io.write_colored_mesh(os.path.join(folder, 'neutral_before.ply'), before['shapes'][0],
                               actor.faces)
  if config.output.render:
    render_before_after(os.path.join(workdir, 'renders', 'before_after.png'), before, after,
                        actor.faces, names, [s for s in config.output.render_shapes.split(',')
                                             if s], view=config.output.view,
                        title=f'{base.info["actor"]["name"]}: edit '
                              f'{description["region"]["kind"]}, '
                              f'thickness x{description["thickness_scale"]:g} '
                              f'+{description["thickness_offset_mm"]:g} mm, bone '
                              f'{np.round(description["bone_offset_mm"], 1).tolist()} mm')
  if log:
    log(summary_line(report, model_dir, workdir))
  return report


def summary_line(report: Dict, model_dir: str, workdir: str) -> str:
  """One line on what an edit did (from its report)."""
  n = report['neutral_displacement_mm']
  carry = max(v['carry_residual_mm'] for v in report['shapes'].values())
  return (f'edited {model_dir} -> {workdir}: {report["vertices"]["affected"]} vertices affected, '
          f'neutral moved {n["affected"]["mean"]:.2f} mm on average there (max '
          f'{n["affected"]["max"]:.2f} mm), untouched vertices moved {n["untouched_max"]:.2g} mm; '
          f'expressions carry the edit to {carry:.1e} mm')
