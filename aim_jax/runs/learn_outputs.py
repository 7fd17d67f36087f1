"""What a learning run leaves for people to look at: meshes, renders, loss curves, a summary.

Layout under the workdir:
  meshes/reconstructed/<shape>.<fmt>    every reconstructed learning shape
  meshes/anatomy.<fmt>                  learned bone surface (skin topology), coloured by thickness
  meshes/neutral_{thickness,skinning,normal,error}.<fmt>  coloured neutral
  renders/*.png                         headless renders of the above (and ground truth)
  loss_curves.png                       every L_Model term against the step
"""

from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import mesh_io, metrics_log, viz
from aim_jax.anatomy.constraints import SparseConstraints
from aim_jax.data.actor import Actor


def reconstruction_error(shapes: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """(V,) mm per-vertex reconstruction error, the mean over the (S, V, 3) learning shapes (as
  `usd_export.model_arrays` computes it)."""
  return eval_lib.vertex_errors(shapes, targets).mean(axis=0)


def field_colors(fields: Dict[str, np.ndarray], error: np.ndarray) -> Dict[str, np.ndarray]:
  """How a learned model's neutral is coloured (in its meshes, and in the viewer).

  Args:
    fields: 'thickness' (V,) mm, 'skinning' (V,), 'normal' (V, 3) at the neutral's vertices.
    error: (V,) mm per-vertex error (`reconstruction_error`).
  Returns:
    (V, 4) uint8 RGBA for 'thickness' (magma, 0 to its 99th percentile), 'skinning' (coolwarm,
    0 to 1), 'normal' (RGB = 0.5 n + 0.5) and 'error' (inferno, 0 to its 99th percentile).
  """
  thickness_top = float(np.percentile(fields['thickness'], 99))
  return {
      'thickness': viz.scalar_colors(fields['thickness'], 'magma', 0.0, thickness_top),
      'skinning': viz.scalar_colors(fields['skinning'], 'coolwarm', 0.0, 1.0),
      'normal': viz.normal_colors(fields['normal']),
      'error': viz.scalar_colors(error, 'inferno', 0.0, max(float(np.percentile(error, 99)),
                                                            1e-6)),
  }


def write_learning_outputs(workdir: str, config, actor: Actor, constraints: SparseConstraints,
                           fields: Dict[str, np.ndarray], summary: Dict):
  """Writes meshes, renders and the loss-curve plot of a learned model.

  Args:
    fields: `aim.evaluate_chunked` at the neutral's vertices ('bone', 'normal', 'thickness',
      'skinning', 'shapes').
  """
  fmt = config.output.mesh_format
  faces = actor.faces
  mesh_dir = os.path.join(workdir, 'meshes')
  render_dir = os.path.join(workdir, 'renders')
  for i, name in enumerate(actor.shape_names):
    mesh_io.write_colored_mesh(os.path.join(mesh_dir, 'reconstructed', f'{name}.{fmt}'),
                               fields['shapes'][i], faces)
  error = reconstruction_error(fields['shapes'], actor.shapes)
  thickness_range = (0.0, float(np.percentile(fields['thickness'], 99)))
  coloured = field_colors(fields, error)
  neutral = fields['shapes'][0]
  for name, colors in coloured.items():
    mesh_io.write_colored_mesh(os.path.join(mesh_dir, f'neutral_{name}.{fmt}'), neutral, faces,
                               colors)
  mesh_io.write_colored_mesh(os.path.join(mesh_dir, f'anatomy.{fmt}'), fields['bone'], faces,
                             coloured['thickness'])
  constrained = constraints.vertex_mask()
  mesh_io.write_colored_mesh(
      os.path.join(mesh_dir, f'constraints.{fmt}'), actor.neutral, faces,
      viz.scalar_colors(np.where(constrained, 1.0, 0.0), 'Greys', -0.5, 1.5))

  steps, curves = metrics_log.curves(metrics_log.path_in(workdir))
  if len(steps):
    viz.plot_loss_curves(os.path.join(workdir, 'loss_curves.png'), steps,
                         {k: v for k, v in curves.items()}, title=f'{actor.name}: L_Model terms')
  if not config.output.render:
    return
  gt = actor.ground_truth
  panels = [
      dict(vertices=neutral, faces=faces, values=fields['thickness'], cmap='magma',
           vmin=thickness_range[0], vmax=thickness_range[1], title='learned thickness',
           label='mm'),
      dict(vertices=fields['bone'], faces=faces, values=fields['thickness'], cmap='magma',
           vmin=thickness_range[0], vmax=thickness_range[1], title='learned anatomy',
           label='thickness mm'),
      dict(vertices=neutral, faces=faces, colors=coloured['normal'], title='anatomy normals'),
      dict(vertices=neutral, faces=faces, values=fields['skinning'], cmap='coolwarm', vmin=0,
           vmax=1, title='jaw skinning weight', label='k'),
  ]
  if gt is not None:
    panels += [
        dict(vertices=actor.neutral, faces=faces, values=gt.thickness, cmap='magma',
             vmin=thickness_range[0], vmax=thickness_range[1], title='true thickness',
             label='mm'),
        dict(vertices=gt.bone_point, faces=faces, values=gt.thickness, cmap='magma',
             vmin=thickness_range[0], vmax=thickness_range[1], title='true anatomy',
             label='thickness mm'),
        dict(vertices=actor.neutral, faces=faces, colors=viz.normal_colors(gt.bone_normal),
             title='true normals'),
        dict(vertices=actor.neutral, faces=faces, values=gt.skinning, cmap='coolwarm', vmin=0,
             vmax=1, title='true skinning weight', label='k'),
    ]
  viz.render_grid(os.path.join(render_dir, 'anatomy.png'), panels, ncols=4,
                  title=f'{actor.name}: learned anatomy' + (' (top) vs ground truth (bottom)'
                                                            if gt is not None else ''))
  viz.render_grid(os.path.join(render_dir, 'anatomy_side.png'),
                  [dict(p, view='side') for p in panels], ncols=4)
  viz.render_views(os.path.join(render_dir, 'error.png'), neutral, faces, error,
                   views=('front', 'three_quarter'), cmap='inferno', vmin=0.0,
                   vmax=float(np.percentile(error, 99)),
                   colorbar_label='mean error over shapes (mm)',
                   title='per-vertex reconstruction error')
  viz.render_views(os.path.join(render_dir, 'constraints.png'), actor.neutral, faces,
                   np.where(constrained, 1.0, 0.0), views=('front', 'side'), cmap='viridis',
                   vmin=0, vmax=1, colorbar_label='carries a sparse constraint',
                   title=f'{constraints.count} sparse anatomical constraints')
  chosen = np.unique(np.linspace(0, actor.num_shapes - 1,
                                 config.output.shapes_to_render).astype(int))
  shape_panels = []
  for i in chosen:
    shape_error = np.linalg.norm(fields['shapes'][i] - actor.shapes[i], axis=-1)
    shape_panels += [
        dict(vertices=actor.shapes[i], faces=faces, colors=None,
             title=f'target: {actor.shape_names[i]}'),
        dict(vertices=fields['shapes'][i], faces=faces, values=shape_error, cmap='inferno',
             vmin=0.0, vmax=max(0.5, float(np.percentile(shape_error, 99))),
             title=f'reconstructed ({shape_error.mean():.3f} mm)', label='error mm'),
    ]
  viz.render_grid(os.path.join(render_dir, 'shapes.png'), shape_panels, ncols=4,
                  title='learning shapes: target and reconstruction')


def format_summary(summary: Dict) -> str:
  """A few human-readable lines of a learning summary."""
  r = summary['reconstruction_mm']
  lines = [f'{summary["actor"]}: reconstruction of the {summary["num_shapes"]} learning shapes: '
           f'mean {r["mean"]:.4f} mm, median {r["median"]:.4f} mm, p95 {r["p95"]:.4f} mm',
           f'sparse constraints: {summary["constraints"]["count"]} points, '
           f'{100 * summary["constraints"]["fraction"]:.1f}% of vertices']
  if 'anatomy' in summary:
    lines.append('dense anatomy recovery (mean; constrained / unconstrained vertices):')
    for name, by_subset in summary['anatomy'].items():
      lines.append(f'  {name:13s} all {by_subset["all"]["mean"]:.3f}   constrained '
                   f'{by_subset["constrained"]["mean"]:.3f}   unconstrained '
                   f'{by_subset["unconstrained"]["mean"]:.3f}')
    jaw = summary['jaw']
    lines.append(f'jaw transforms: {jaw["rotation_deg"]["mean"]:.3f} deg, '
                 f'{jaw["displacement_mm"]["mean"]:.3f} mm mean error')
  if 'anatomy_quality' in summary:
    lines += format_anatomy_quality(summary['anatomy_quality'])
  return '\n'.join(lines)


def format_anatomy_quality(quality: Dict) -> List[str]:
  """Two lines of `anatomy_quality.anatomy_quality` figures, the truth's and the actor's bone
  meshes' beside (where known)."""
  beside = [(name, quality[key]) for name, key in (('truth', 'ground_truth'),
                                                   ('bone meshes', 'bone_meshes'))
            if key in quality]

  def figure(key, fmt, unit, fields=None):
    def text(figures):
      values = [figures[key]] if fields is None else [figures[key][f] for f in fields]
      return ' / '.join(format(v, fmt) for v in values)
    others = '; '.join(f'{name} {text(figures)}' for name, figures in beside)
    return text(quality) + unit + (f' ({others})' if others else '')

  lines = ['anatomy quality: left-right asymmetry mean / p95: thickness '
           f'{figure("thickness_asymmetry_mm", ".2f", " mm", ("mean", "p95"))}, bone points '
           f'{figure("bone_asymmetry_mm", ".2f", " mm", ("mean", "p95"))}',
           f'  flipped bone triangles {figure("flipped_triangles_percent", ".2f", " %")}, '
           'thickness roughness '
           f'{figure("thickness_roughness_mm", ".3f", " mm per edge")}']
  if 'rhine_depth' in quality:
    rhine = quality['rhine_depth']
    lines[-1] += (f', Rhine tissue depths {rhine["mean_abs_error_mm"]:.2f} mm mean error '
                  f'at {rhine["count"]} landmarks')
    meshes = quality.get('bone_meshes', {}).get('rhine_depth')
    if meshes is not None:
      lines[-1] += f' (bone meshes {meshes["mean_abs_error_mm"]:.2f} mm)'
  return lines
