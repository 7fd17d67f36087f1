"""The synthetic actor's held-out performance: a seeded recipe of controls played on any actor.

`performance_controls` draws smooth random control curves (jaw angles, expression intensities,
some expressions absent from the learning shapes) that depend on the seed only; `perform` plays
them on a synthetic actor with its own pivot and face frame, so the same recipe on two actors is
the ground truth of retargeting between them. Each frame depends on its own controls only, so
`stream_performance` plays the frames a range at a time (`PerformanceFrames`) for sequences too
long to hold. Millimetres; angles in degrees.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Iterator

import numpy as np

from aim_jax import rigid_np
from aim_jax.data.actor import Actor
from aim_jax.data.synthetic_expressions import EXPRESSIONS, face_frame, jaw_rotation, left_window
from aim_jax.data.synthetic_head import smoothstep


@dataclasses.dataclass(frozen=True)
class Performance:
  """A held-out sequence with ground truth.

  Attributes:
    frames: (T, V, 3) float32 mm skin shapes (a `PerformanceFrames`, played on demand, from
      `stream_performance`).
    jaw_rotation: (T, 3, 3) mandible rotations about the actor's pivot.
    jaw_translation: (T, 3) mm mandible translations.
    weights: (T, C) the recipe's per-frame control values.
    control_names: C names: 'jaw_open_deg', 'jaw_yaw_deg', 'jaw_forward_mm', then expression
      controls ('<expression>', or '<expression>_left' / '_right' for one half of the face).
  """
  frames: np.ndarray
  jaw_rotation: np.ndarray
  jaw_translation: np.ndarray
  weights: np.ndarray
  control_names: tuple

  @property
  def num_frames(self) -> int:
    return int(self.frames.shape[0])


# Expression controls of the performance: (name, expression, side, maximum intensity, activity).
# side: 'left' / 'right' halves of the face or 'both'; activity in [0, 1] (how often it is on).
PERFORMANCE_CONTROLS = (
    ('smile_left', 'smile', 'left', 1.3, 0.5),
    ('smile_right', 'smile', 'right', 1.3, 0.5),
    ('blink_left', 'blink', 'left', 1.0, 0.3),
    ('blink_right', 'blink', 'right', 1.0, 0.3),
    ('brow_raise_left', 'brow_raise', 'left', 1.3, 0.4),
    ('brow_raise_right', 'brow_raise', 'right', 1.2, 0.4),
    ('brow_lower', 'brow_lower', 'both', 1.0, 0.3),
    ('sneer_left', 'sneer', 'left', 1.2, 0.3),
    ('cheek_puff_right', 'cheek_puff', 'right', 1.0, 0.3),
    ('pucker', 'pucker', 'both', 1.2, 0.3),
    ('funnel', 'funnel', 'both', 1.0, 0.3),
    ('frown_right', 'frown', 'right', 1.2, 0.3),
    ('mouth_stretch_left', 'mouth_stretch', 'left', 1.2, 0.3),
    ('chin_raise', 'chin_raise', 'both', 1.0, 0.3),
    ('squint_left', 'squint', 'left', 1.0, 0.3),
    ('lip_roll', 'lip_roll', 'both', 1.0, 0.4),
    ('nose_wrinkle', 'nose_wrinkle', 'both', 1.2, 0.4),
    ('jaw_clench', 'jaw_clench', 'both', 1.0, 0.4),
    ('dimpler_left', 'dimpler', 'left', 1.2, 0.4),
    ('eye_wide', 'eye_wide', 'both', 1.0, 0.3),
)


def smooth_curves(rng: np.random.Generator, num_frames: int, num_curves: int,
                  num_terms: int = 4, min_period: float = 40.0,
                  max_period: float = 160.0) -> np.ndarray:
  """(num_frames, num_curves) smooth random curves, each with maximum exactly 1.

  Each curve is a sum of `num_terms` sinusoids with random periods (frames) in
  [min_period, max_period], phases and amplitudes, minus its mean, divided by its maximum (so
  every curve reaches 1 once and its values lie in about [-2, 1]).
  """
  t = np.arange(num_frames, dtype=np.float64)[:, None, None]
  period = rng.uniform(min_period, max_period, (num_curves, num_terms))
  phase = rng.uniform(0.0, 2.0 * np.pi, (num_curves, num_terms))
  amplitude = rng.uniform(0.3, 1.0, (num_curves, num_terms))
  curves = (amplitude * np.sin(2.0 * np.pi * t / period + phase)).sum(-1)
  curves -= curves.mean(axis=0)
  return curves / curves.max(axis=0)


def performance_controls(num_frames: int = 100, seed: int = 1) -> tuple:
  """The seeded recipe of a held-out performance, independent of the actor.

  Controls are smooth random curves. Jaw: opening 0-28 degrees (between and beyond the learning
  angles) combined with sideways yaw (+-5 degrees) and protrusion (0-3 mm). Expressions: left and
  right halves of symmetric expressions with different weights, intensities up to 1.3,
  expressions with non-linear intensity profiles (smile, eyelids), and expressions absent from
  the learning shapes (lip roll, nose wrinkle, jaw clench, dimpler, eyes wide).

  Args:
    num_frames: T (>= 2).
    seed: the performance's seed (same seed, same recipe).
  Returns:
    (weights (T, C) float64, control_names (C,)): 'jaw_open_deg', 'jaw_yaw_deg',
    'jaw_forward_mm', then the names of `PERFORMANCE_CONTROLS`.
  """
  if num_frames < 2:
    raise ValueError(f'num_frames must be >= 2, got {num_frames}')
  rng = np.random.default_rng(seed)
  jaw_curves = smooth_curves(rng, num_frames, 3, min_period=60.0, max_period=200.0)
  open_deg = 28.0 * smoothstep(0.6 + 0.5 * jaw_curves[:, 0])
  yaw_deg = 5.0 * jaw_curves[:, 1] / np.abs(jaw_curves[:, 1]).max()
  forward_mm = 3.0 * smoothstep(jaw_curves[:, 2])
  curves = smooth_curves(rng, num_frames, len(PERFORMANCE_CONTROLS))
  names = ['jaw_open_deg', 'jaw_yaw_deg', 'jaw_forward_mm']
  weights = [open_deg, yaw_deg, forward_mm]
  for j, (name, _, _, maximum, activity) in enumerate(PERFORMANCE_CONTROLS):
    # Shift the curve down so the control is zero for about (1 - activity) of the time; it
    # reaches `maximum` once.
    level = np.clip((curves[:, j] + 2.0 * activity - 1.0) / (2.0 * activity), 0.0, 1.0)
    names.append(name)
    weights.append(maximum * smoothstep(level))
  return np.stack(weights, -1), tuple(names)


def _checked(actor: Actor, weights: np.ndarray, control_names) -> tuple:
  """(weights (T, C) float64, names), checked against `performance_controls`' controls."""
  if actor.ground_truth is None:
    raise ValueError(f'{actor.name}: a performance needs a synthetic actor with ground truth')
  expected = ('jaw_open_deg', 'jaw_yaw_deg', 'jaw_forward_mm') + tuple(
      c[0] for c in PERFORMANCE_CONTROLS)
  names = expected if control_names is None else tuple(str(n) for n in control_names)
  if names != expected:
    raise ValueError(f'unknown synthetic performance controls {names}; expected {expected}')
  weights = np.asarray(weights, np.float64)
  if weights.ndim != 2 or weights.shape[1] != len(expected):
    raise ValueError(f'performance weights must be (T, {len(expected)}), got {weights.shape}')
  return weights, names


def _jaw_motion(weights: np.ndarray) -> tuple:
  """The recipe's jaw: rotations (T, 3, 3) and translations (T, 3) mm (float64)."""
  open_deg, yaw_deg, forward_mm = weights[:, 0], weights[:, 1], weights[:, 2]
  rotation = np.stack([jaw_rotation(o, y) for o, y in zip(open_deg, yaw_deg)])
  translation = np.stack([0.3 * yaw_deg,                          # Lateral shift with yaw.
                          -0.002 * open_deg ** 2,                 # Condyle slides down...
                          forward_mm + 0.006 * open_deg ** 2], -1)  # ... and forward.
  return rotation, translation


def perform(actor: Actor, weights: np.ndarray, control_names=None) -> Performance:
  """Plays a recipe of controls on a synthetic actor (any identity of the same construction).

  The jaw rotates by the recipe's angles about the actor's own pivot, with a condylar slide that
  grows non-linearly with the opening and a lateral shift with the yaw; the expressions are the
  generators of `EXPRESSIONS` on the actor's own face frame. The same recipe on two actors is
  the ground truth of retargeting one actor's performance to the other. Each frame depends on
  its own row of `weights` only: rows a..b-1 played alone give the same frames, bit for bit.

  Args:
    actor: a synthetic actor (needs its ground truth).
    weights: (T, C) control values, as `performance_controls` returns (or a Performance's).
    control_names: C names; default the names of `performance_controls`.
  Returns:
    Performance with frames (T, V, 3) float32 mm.
  """
  weights, names = _checked(actor, weights, control_names)
  gt = actor.ground_truth
  frame = face_frame(gt)
  neutral = np.asarray(actor.neutral, np.float64)
  rotation, translation = _jaw_motion(weights)
  frames = rigid_np.skin_points(neutral, gt.skinning, rotation, translation, actor.pivot)
  left = left_window(frame)
  windows = {'left': left, 'right': 1.0 - left, 'both': None}
  for j, (_, expression, side, _, _) in enumerate(PERFORMANCE_CONTROLS):
    frames += EXPRESSIONS[expression].delta(frame, weights[:, 3 + j], windows[side])
  return Performance(frames=frames.astype(np.float32),
                     jaw_rotation=rotation.astype(np.float32),
                     jaw_translation=translation.astype(np.float32),
                     weights=weights.astype(np.float32), control_names=names)


class PerformanceFrames:
  """The (T, V, 3) float32 mm frames of a recipe played on an actor, made when indexed: a
  slice (step 1) or a frame gives `perform` of those rows of the recipe, the same values as
  the whole performance's frames, without holding (T, V, 3). `np.asarray` plays every frame.

  Attributes:
    actor: the synthetic actor; weights: (T, C) float64 controls; control_names: C names.
  """

  def __init__(self, actor: Actor, weights: np.ndarray, control_names=None):
    self.weights, self.control_names = _checked(actor, weights, control_names)
    self.actor = actor

  @property
  def shape(self) -> tuple:
    return (int(self.weights.shape[0]), int(self.actor.num_vertices), 3)

  dtype = np.dtype(np.float32)
  ndim = 3

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, index) -> np.ndarray:
    if isinstance(index, slice):
      start, stop, step = index.indices(len(self))
      if step != 1:
        raise IndexError(f'PerformanceFrames slices with step 1 only, got {step}')
      if stop <= start:
        return np.zeros((0,) + self.shape[1:], np.float32)
      return perform(self.actor, self.weights[start:stop], self.control_names).frames
    j = operator.index(index)
    if not -len(self) <= j < len(self):
      raise IndexError(f'frame {j} of a {len(self)}-frame performance')
    j %= len(self)
    return self[j:j + 1][0]

  def blocks(self, size: int = 100) -> Iterator[np.ndarray]:
    """The frames in order, `size` at a time."""
    for start in range(0, len(self), size):
      yield self[start:start + size]

  def __array__(self, dtype=None, copy=None):
    del copy  # Always a new array.
    frames = self[:]
    return frames if dtype is None else frames.astype(dtype)


def make_performance(actor: Actor, num_frames: int = 100, seed: int = 1) -> Performance:
  """A held-out performance of a synthetic actor, outside the span of its learning shapes.

  `performance_controls(num_frames, seed)` played on `actor` (`perform`): the recipe depends on
  the seed only, so the same seed on another synthetic actor gives that actor's version of the
  same performance (the ground truth of retargeting).

  Args:
    actor: a synthetic actor (needs its ground truth).
    num_frames: T.
    seed: the performance's seed (same seed, same performance).
  Returns:
    Performance with frames (T, V, 3) float32 mm.
  """
  if actor.ground_truth is None:
    raise ValueError(f'{actor.name}: make_performance needs a synthetic actor with ground truth')
  weights, names = performance_controls(num_frames, seed)
  return perform(actor, weights, names)


def stream_performance(actor: Actor, num_frames: int = 100, seed: int = 1) -> Performance:
  """`make_performance` with frames played on demand (`PerformanceFrames`): the same values a
  range of frames at a time, so a sequence of any length holds only its controls and jaws."""
  if actor.ground_truth is None:
    raise ValueError(f'{actor.name}: stream_performance needs a synthetic actor with ground '
                     'truth')
  weights, names = performance_controls(num_frames, seed)
  rotation, translation = _jaw_motion(weights)
  return Performance(frames=PerformanceFrames(actor, weights, names),
                     jaw_rotation=rotation.astype(np.float32),
                     jaw_translation=translation.astype(np.float32),
                     weights=weights.astype(np.float32), control_names=names)
