"""What the viewer shows, as pure functions: arrays in, arrays and colours out (no server).

The scene is laid out in columns along x (mm, the model's own axes: +x the subject's left, +y
up, +z forward): the learned model at the neutral first (skin, the learned anatomy surface, the
skull and mandible meshes, the sparse constraints), then, with a performance, one column per
sequence (the ground truth when known, then every fitted or retargeted method), each with its
skin, skull and a mandible moved by the sequence's jaw transforms.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from aim_jax import eval as eval_lib
from aim_jax import rigid_np, viz
from aim_jax.anatomy.constraints import MANDIBLE
from aim_jax.data.actor import Mesh
from aim_jax.models import aim
from aim_jax.runs import learn_outputs, reporting

COLOR_MODES = ('thickness', 'skinning', 'normal', 'error', 'none')
SKIN_RGBA = np.array([225, 190, 165, 255], np.uint8)  # Skin without a colour map.
BONE_RGB = (236, 226, 198)  # Skull and mandible.
CONSTRAINT_RGB = {'cranium': (40, 200, 90), 'mandible': (40, 120, 255)}
TRUTH = 'truth'


@dataclasses.dataclass(frozen=True)
class ModelScene:
  """A learned model at its neutral, ready to show.

  Attributes:
    name: the actor's name.
    faces: (T, 3) int32 skin triangles (the anatomy surface shares them).
    fields: 'bone' (V, 3) mm, 'normal' (V, 3), 'thickness' (V,) mm, 'skinning' (V,) at the
      neutral's vertices (`aim.evaluate_chunked`, an edited model's edit applied).
    skin: (V, 3) mm, the model's neutral B + D N.
    colors: (V, 4) uint8 RGBA per colour mode of `COLOR_MODES` ('error': the mean
      reconstruction error over the learning shapes).
    skull, mandible: the actor's bone meshes (mm) in the neutral pose.
    pivot: (3,) mm jaw pivot of the model.
    constraint_points: (M, 3) mm skin points q of the sparse constraints.
    constraint_bone_points: (M, 3) mm their bone points b* (q = b* + d* n*).
    constraint_bones: (M,) int, 0 cranium, 1 mandible.
  """
  name: str
  faces: np.ndarray
  fields: Dict[str, np.ndarray]
  skin: np.ndarray
  colors: Dict[str, np.ndarray]
  skull: Mesh
  mandible: Mesh
  pivot: np.ndarray
  constraint_points: np.ndarray
  constraint_bone_points: np.ndarray
  constraint_bones: np.ndarray


@dataclasses.dataclass(frozen=True)
class Track:
  """One sequence of frames in the model's topology.

  Attributes:
    name: its column label ('aim', 'gbs', 'truth', ...).
    frames: (F, V, 3) mm skin frames.
    jaw_rotation: (F, 3, 3) mandible rotations about the pivot, or None (e.g. GBS).
    jaw_translation: (F, 3) mm mandible translations, or None.
  """
  name: str
  frames: np.ndarray
  jaw_rotation: Optional[np.ndarray] = None
  jaw_translation: Optional[np.ndarray] = None

  @property
  def num_frames(self) -> int:
    return int(self.frames.shape[0])

  @property
  def has_jaw(self) -> bool:
    return self.jaw_rotation is not None and self.jaw_translation is not None


@dataclasses.dataclass(frozen=True)
class Performance:
  """Sequences shown side by side, and what they are compared against.

  Attributes:
    source: where they were read (a fitting or retargeting directory), for the GUI.
    tracks: the sequences, in column order (no ground truth among them).
    truth: the ground-truth track, or None when unknown.
    error_vmax: top of the per-frame error colour scale (mm), shared by every track and frame.
  """
  source: str
  tracks: Tuple[Track, ...]
  truth: Optional[Track] = None
  error_vmax: float = 1.0

  @property
  def num_frames(self) -> int:
    return self.tracks[0].num_frames

  @property
  def columns(self) -> List[Track]:
    """Every track shown: the truth first (when known), then the methods."""
    return ([self.truth] if self.truth is not None else []) + list(self.tracks)


def model_scene(name: str, faces: np.ndarray, fields: Dict[str, np.ndarray],
                learning_shapes: np.ndarray, skull: Mesh, mandible: Mesh, pivot: np.ndarray,
                constraint_points: np.ndarray, constraint_bone_points: np.ndarray,
                constraint_bones: np.ndarray) -> ModelScene:
  """A `ModelScene` from a model's evaluated fields (the evaluation `runs/learn.py` makes).

  Args:
    fields: `aim.evaluate_chunked` at the neutral's vertices: 'bone', 'normal', 'thickness',
      'skinning' and 'shapes' (S, V, 3) mm.
    learning_shapes: (S, V, 3) mm, the actor's learning shapes (for the error colours).
    Others: as in `ModelScene`.
  """
  error = learn_outputs.reconstruction_error(fields['shapes'], learning_shapes)
  colors = dict(learn_outputs.field_colors(fields, error))
  colors['none'] = np.tile(SKIN_RGBA, (len(error), 1))
  anatomy = {k: np.asarray(fields[k]) for k in ('bone', 'normal', 'thickness', 'skinning')}
  return ModelScene(name=name, faces=np.asarray(faces, np.int32), fields=anatomy,
                    skin=np.asarray(fields['shapes'][0], np.float32), colors=colors, skull=skull,
                    mandible=mandible, pivot=np.asarray(pivot, np.float64),
                    constraint_points=np.asarray(constraint_points, np.float32),
                    constraint_bone_points=np.asarray(constraint_bone_points, np.float32),
                    constraint_bones=np.asarray(constraint_bones, np.int32))


def thickness_preview(fields: Dict[str, np.ndarray], scale: float) -> np.ndarray:
  """The neutral with every thickness scaled, s0 = B + scale D N (what `edit_anatomy.py` with
  a region covering the face and `thickness_scale` would give), (V, 3) mm."""
  scaled = dict(fields, thickness=np.asarray(fields['thickness']) * float(scale))
  return np.asarray(aim.neutral_from_anatomy(scaled), np.float32)


def constraint_colors(bones: np.ndarray) -> np.ndarray:
  """(M, 3) uint8 colours of the constraint points: green over the cranium, blue over the
  mandible."""
  bones = np.asarray(bones)
  colors = np.empty((len(bones), 3), np.uint8)
  colors[:] = CONSTRAINT_RGB['cranium']
  colors[bones == MANDIBLE] = CONSTRAINT_RGB['mandible']
  return colors


def column_width(points: np.ndarray, gap: float = 0.25) -> float:
  """Spacing of the columns along x (mm): the points' x extent plus `gap` of it."""
  points = np.asarray(points)
  extent = float(points[:, 0].max() - points[:, 0].min())
  return (1.0 + gap) * max(extent, 1e-6)


def column_offsets(names: Sequence[str], width: float) -> Dict[str, np.ndarray]:
  """Each column's (3,) mm offset, side by side along +x from the origin, in order."""
  return {name: np.array([i * width, 0.0, 0.0]) for i, name in enumerate(names)}


def scene_bounds(points: Sequence[np.ndarray],
                 offsets: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
  """(3,) lower and upper corners (mm) of every point set moved by its offset."""
  moved = np.concatenate([np.asarray(p, np.float64) + o for p, o in zip(points, offsets)])
  return moved.min(axis=0), moved.max(axis=0)


def front_camera(lower: np.ndarray, upper: np.ndarray, fov_deg: float = 50.0,
                 aspect: float = 1.6, margin: float = 1.1,
                 panel: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
  """A camera in front (+z) of a box that sees all of it (mm), looking along -z.

  Args:
    lower, upper: (3,) box corners.
    fov_deg: vertical field of view; aspect: width / height of the view.
    margin: extra room around the box (1: it touches the view's edges).
    panel: the fraction of the view's width on the right that a control panel covers; the
      box is framed in the rest.
  Returns:
    (position (3,), look_at (3,)) in mm.
  """
  lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
  center = 0.5 * (lower + upper)
  half = 0.5 * (upper - lower)
  tan = np.tan(np.radians(fov_deg) / 2.0)
  distance = margin * max(half[1] / tan, half[0] / (tan * aspect * (1.0 - panel)))
  look_at = center + np.array([panel * distance * tan * aspect, 0.0, 0.0])
  return look_at + np.array([0.0, 0.0, distance + half[2]]), look_at


def posed_mandible(mandible: np.ndarray, track: Track, frame: int,
                   pivot: np.ndarray) -> np.ndarray:
  """(N, 3) mm mandible vertices moved by a track's jaw transform at `frame` about `pivot`
  (`rigid_np.rigid_about_pivot`, the motion every fit and the evaluation use); the neutral pose
  when the track has no jaw."""
  if not track.has_jaw:
    return np.asarray(mandible, np.float32)
  moved = rigid_np.rigid_about_pivot(np.asarray(mandible, np.float64),
                                     np.asarray(track.jaw_rotation[frame], np.float64),
                                     np.asarray(track.jaw_translation[frame], np.float64),
                                     np.asarray(pivot, np.float64))
  return moved.astype(np.float32)


def frame_errors(track: Track, truth: Track, frame: int) -> np.ndarray:
  """(V,) mm per-vertex error of a track's frame against the truth's."""
  return eval_lib.vertex_errors(track.frames[frame], truth.frames[frame])


def error_vmax(tracks: Sequence[Track], truth: Optional[Track], frames: Sequence[int]) -> float:
  """Top of the error colour scale (mm) for the tracks against the truth at `frames`: the 99th
  percentile, at least 0.5 (`reporting.error_vmax`, as in the fit's error maps); 1 without
  truth."""
  if truth is None or not tracks:
    return 1.0
  chosen = list(frames)
  return reporting.error_vmax([eval_lib.vertex_errors(t.frames[chosen], truth.frames[chosen])
                               for t in tracks])


def track_colors(model: ModelScene, performance: Performance, track: Track, frame: int,
                 mode: str) -> np.ndarray:
  """(V, 4) uint8 colours of a track's skin at `frame` in colour mode `mode`.

  'error' colours the per-vertex error against the truth (inferno, 0 to the performance's
  `error_vmax`); tracks without a truth, and the truth itself, get the plain skin colour. Other
  modes colour the model's fields at the neutral (the topology is the same).
  """
  if mode != 'error':
    return model.colors[mode]
  truth = performance.truth
  if truth is None or track is truth:
    return model.colors['none']
  return viz.scalar_colors(frame_errors(track, truth, frame), 'inferno', 0.0,
                           performance.error_vmax)


def frame_summary(performance: Performance, frame: int) -> List[Tuple[str, Optional[float]]]:
  """(track name, mean per-vertex error in mm at `frame` or None without truth) per track."""
  truth = performance.truth
  return [(t.name, None if truth is None else float(frame_errors(t, truth, frame).mean()))
          for t in performance.tracks]


def column_label(track: Track, error_mm: Optional[float]) -> str:
  """The label over a column: its name, with the frame's mean error when known."""
  return track.name if error_mm is None else f'{track.name} ({error_mm:.3f} mm)'


def sample_frames(num_frames: int, count: int = 10) -> np.ndarray:
  """Up to `count` frame indices spread over the sequence (for colour scales)."""
  return np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).astype(int))
