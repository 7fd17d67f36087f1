"""What several runs write alike: per-frame errors (CSV and plot), error tables, error-map
grids and mesh sequences.

Atomic JSON / npz / text writes are `aim_jax/files.py` (the model directory uses them too).
"""

from __future__ import annotations

import csv
import io
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import files, mesh_io, viz


def per_frame_csv(per_frame: Dict[str, np.ndarray]) -> str:
  """CSV text: a 'frame' column, then '<method>_mm' columns of per-frame errors (mm, 5 decimals).

  Args:
    per_frame: {method: (F,) mean error per frame, mm}, every method with the same F.
  """
  out = io.StringIO()
  writer = csv.writer(out)
  methods = list(per_frame)
  writer.writerow(['frame'] + [f'{m}_mm' for m in methods])
  for j in range(len(per_frame[methods[0]]) if methods else 0):
    writer.writerow([j] + [f'{per_frame[m][j]:.5f}' for m in methods])
  return out.getvalue()


def write_per_frame(workdir: str, per_frame: Dict[str, np.ndarray], title: str):
  """workdir/per_frame.csv (`per_frame_csv`) and workdir/per_frame_error.png."""
  files.write_text(os.path.join(workdir, 'per_frame.csv'), per_frame_csv(per_frame))
  viz.plot_per_frame_error(os.path.join(workdir, 'per_frame_error.png'), per_frame, title=title)


def error_line(label: str, stats: Dict[str, float], jaw: Optional[Dict] = None,
               width: int = 10, note: str = '') -> str:
  """One line of an error table: mean / median / p95 (mm), the jaw's mean errors when given.

  Args:
    label: the method, left-aligned in `width` characters.
    stats: `eval.stats` of the errors (mm).
    jaw: `eval.jaw_errors` (mean rotation deg / displacement mm shown), or None.
    note: appended after two spaces when given (e.g. '(0.12 s/frame)').
  """
  line = (f'  {label:{width}s} mean {stats["mean"]:.4f} mm  median {stats["median"]:.4f} mm  '
          f'p95 {stats["p95"]:.4f} mm')
  if jaw is not None:
    line += (f'  jaw {jaw["rotation_deg"]["mean"]:.2f} deg / '
             f'{jaw["displacement_mm"]["mean"]:.2f} mm')
  if note:
    line += f'  {note}'
  return line


def error_table(error_mm: Dict[str, Dict], jaw: Dict[str, Dict], width: int = 10,
                notes: Optional[Dict[str, str]] = None) -> List[str]:
  """`error_line` for every method of `error_mm`, with its jaw errors and note when present."""
  notes = notes or {}
  return [error_line(method, s, jaw.get(method), width, notes.get(method, ''))
          for method, s in error_mm.items()]


def write_mesh_sequence(folder: str, frames: np.ndarray, faces: np.ndarray, fmt: str = 'ply',
                        first: int = 0):
  """frame_XXXX.<fmt> in `folder` for each of (F, V, 3) mm `frames` with (T, 3) `faces`,
  numbered from `first` (a chunk of a longer sequence)."""
  os.makedirs(folder, exist_ok=True)
  for j, frame in enumerate(frames, start=first):
    mesh_io.write_colored_mesh(os.path.join(folder, f'frame_{j:04d}.{fmt}'), frame, faces)


def error_vmax(errors: Sequence[np.ndarray]) -> float:
  """The top of an error colour scale: the 99th percentile of all errors (mm), at least 0.5."""
  return max(0.5, float(np.percentile(np.concatenate([np.ravel(e) for e in errors]), 99)))


def render_error_maps(path: str, truth: np.ndarray, results: Dict[str, Dict],
                      faces: np.ndarray, region: np.ndarray, frames: Sequence[int],
                      title: str = 'fitted frames: per-vertex error',
                      numbers: Optional[Sequence[int]] = None) -> str:
  """A PNG grid, one row per chosen frame: the true frame, then each method's frame coloured
  by its per-vertex error (mm, one colour scale; titles give the mean over `region`).

  Args:
    truth: (F, V, 3) mm; results: {method: {'frames': (F, V, 3) mm}}; frames: chosen indices.
    numbers: the frame numbers the titles give (default `frames`; e.g. when truth and results
      hold only the chosen frames of a longer sequence).
  """
  chosen = np.asarray(frames)
  numbers = chosen if numbers is None else np.asarray(numbers)
  vmax = error_vmax([eval_lib.vertex_errors(results[m]['frames'][chosen], truth[chosen])
                     for m in results])
  panels = []
  for j, number in zip(chosen, numbers):
    panels.append(dict(vertices=truth[j], faces=faces, title=f'frame {number}: target'))
    for method, result in results.items():
      error = eval_lib.vertex_errors(result['frames'][j], truth[j])
      panels.append(dict(vertices=result['frames'][j], faces=faces, values=error,
                         cmap='inferno', vmin=0.0, vmax=vmax,
                         title=f'{method} ({error[region].mean():.3f} mm)', label='error mm'))
  return viz.render_grid(path, panels, ncols=1 + len(results), title=title)


def render_strip(path: str, rows: Sequence[tuple], faces: np.ndarray, frames: Sequence[int],
                 truth: Optional[np.ndarray] = None, view='three_quarter',
                 title: Optional[str] = None) -> str:
  """A PNG grid: one column per chosen frame, one row per sequence (source, target(s), truth).

  Args:
    rows: (label, (F, V, 3) frames mm, faces or None, compare) per row; rows with compare=True
      are coloured by their per-vertex error against `truth` when given (one colour scale; the
      titles give the mean over every vertex).
    frames: the chosen frame indices.
  """
  vmax = None
  if truth is not None:
    errors = [eval_lib.vertex_errors(seq[list(frames)], truth[list(frames)])
              for _, seq, _, compare in rows if compare]
    vmax = error_vmax(errors) if errors else None
  panels = []
  for label, seq, row_faces, compare in rows:
    for j in frames:
      panel = dict(vertices=seq[j], faces=faces if row_faces is None else row_faces, view=view,
                   title=f'{label}, frame {j}')
      if compare and truth is not None:
        error = eval_lib.vertex_errors(seq[j], truth[j])
        panel.update(values=error, cmap='inferno', vmin=0.0, vmax=vmax, label='error mm',
                     title=f'{label}, frame {j} ({error.mean():.2f} mm)')
      panels.append(panel)
  return viz.render_grid(path, panels, ncols=len(frames), title=title, panel_px=(280, 330))
