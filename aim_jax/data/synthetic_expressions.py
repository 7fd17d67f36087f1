"""The synthetic actor's expressions: jaw rotations, local expression generators, learning shapes.

Each expression is a few basis displacement fields over the face (`FaceFrame`: chart
coordinates, bone normals, which lip a vertex is on) times a profile of its intensity. The
learning shapes (`LEARNING_SHAPES`) and the held-out performance (`synthetic_performance`) share
the table `EXPRESSIONS`. Millimetres; angles in degrees where named `_deg`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from aim_jax.data.actor import GroundTruth
from aim_jax.data.synthetic_head import (
  CHART_RADIUS_MM,
  CORNER_X,
  EYE,
  MOUTH_Y,
  angles_of,
  gauss,
  gauss_pair,
  lip_profile,
  smoothstep,
)

# -------------------------------------------------------------------------------------------
# Jaw motion.


def jaw_rotation(open_deg: float = 0.0, yaw_deg: float = 0.0, roll_deg: float = 0.0
                 ) -> np.ndarray:
  """(3, 3) mandible rotation: yaw (about +y, chin toward +x) after opening (about +x).

  A positive `open_deg` moves the chin down and back; a positive `yaw_deg` moves it toward the
  subject's left; `roll_deg` tilts it about +z.
  """
  a, b, c = np.radians([open_deg, yaw_deg, roll_deg])
  rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
  ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
  rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
  return rz @ ry @ rx


# -------------------------------------------------------------------------------------------
# Expression generators.


@dataclasses.dataclass(frozen=True)
class FaceFrame:
  """Per-vertex quantities the expression generators use.

  Attributes:
    x, y: (V,) mm chart coordinates of each vertex's bone point (the features' coordinates).
    normal: (V, 3) unit bone normal (outward).
    side: (V,) which lip a vertex belongs to: +1 on the upper lip, -1 on the lower lip (the two
      copies of a mouth-slit vertex differ), blending smoothly through 0 on the mouth line
      beyond the mouth corners (where the skin is continuous).
    lateral: (V,) smooth sign of x: -1 on the subject's right, +1 on the left, 0 on the midline.
  """
  x: np.ndarray
  y: np.ndarray
  normal: np.ndarray
  side: np.ndarray
  lateral: np.ndarray


def face_frame(ground_truth: GroundTruth) -> FaceFrame:
  """The FaceFrame of a synthetic actor, from its ground truth."""
  u, v = angles_of(ground_truth.bone_point)
  x, y = CHART_RADIUS_MM * u, CHART_RADIUS_MM * v
  # Inside the mouth the bone (cranium or mandible) tells the lips apart; beyond the corners a
  # smooth function of the height does.
  mouth = 1.0 - smoothstep((np.abs(x) - (CORNER_X - 5.0)) / 5.0)
  lip = np.where(ground_truth.bone_id == 0, 1.0, -1.0)
  side = mouth * lip + (1.0 - mouth) * np.tanh((y - MOUTH_Y) / 3.0)
  return FaceFrame(x=x, y=y, normal=np.asarray(ground_truth.bone_normal, np.float64),
                   side=side, lateral=np.tanh(x / 4.0))


def left_window(frame: FaceFrame, width_mm: float = 6.0) -> np.ndarray:
  """(V,) smooth window: 1 on the subject's left (+x), 0 on the right, 0.5 on the midline."""
  return 0.5 * (1.0 + np.tanh(frame.x / width_mm))


def _vec(*components):
  """(V, 3) field from three (V,) (or scalar) components."""
  return np.stack(np.broadcast_arrays(*components), -1).astype(np.float64)


def _lips_window(f: FaceFrame) -> np.ndarray:
  return lip_profile(f.x) * np.exp(-0.5 * ((f.y - MOUTH_Y) / 9.0) ** 2)


def _corners(f: FaceFrame, sx=10.0, sy=9.0) -> np.ndarray:
  return gauss_pair(f.x, f.y, CORNER_X, MOUTH_Y, sx, sy)


def _smile(f):
  w = _corners(f, 12.0, 10.0) + 0.35 * gauss_pair(f.x, f.y, 40.0, -20.0, 14.0, 10.0)
  up_out = w[:, None] * _vec(3.0 * f.lateral, 6.0, 0.0)
  back = w[:, None] * _vec(1.0 * f.lateral, 0.0, -4.0)
  return np.stack([up_out, back])


def _pucker(f):
  w = _lips_window(f)[:, None]
  return (w * _vec(-0.3 * f.x, -0.25 * (f.y - MOUTH_Y), 9.0))[None]


def _funnel(f):
  w = _lips_window(f)[:, None]
  return (w * _vec(-0.15 * f.x, 3.0 * f.side, 6.0))[None]


def _brow_raise(f):
  w = gauss_pair(f.x, f.y, 28.0, 31.0, 20.0, 10.0) + 0.5 * gauss(f.x, f.y, 0.0, 45.0, 45.0, 18.0)
  return (w[:, None] * _vec(0.0, 7.0, 1.0))[None]


def _brow_lower(f):
  w = gauss_pair(f.x, f.y, 22.0, 28.0, 13.0, 8.0)
  return (w[:, None] * _vec(-3.0 * f.lateral, -4.0, 1.5))[None]


def _eyelid_rotation_fields(f, y0, sy_up, sy_down, radius=12.0):
  """Basis fields of eyelid skin rotating about the eyeball's horizontal axis (+x).

  The skin is continuous over the eye (no eye opening), so the lids' window is smooth: its peak
  at `EYE[1] + y0` moves most and the motion fades over sy_up / sy_down mm above / below.
  """
  dy = f.y - (EYE[1] + y0)
  sy = np.where(dy >= 0.0, sy_up, sy_down)
  w = gauss_pair(f.x, 0.0, EYE[0], 0.0, 11.0, 1.0) * np.exp(-0.5 * (dy / sy) ** 2)
  lever = radius * f.normal  # From the eyeball's centre to the lid.
  along = lever - np.outer(lever[:, 0], [1.0, 0.0, 0.0])  # Part perpendicular to the axis.
  turn = np.cross(np.array([1.0, 0.0, 0.0]), lever)
  return np.stack([w[:, None] * along, w[:, None] * turn])


def _upper_lid(f):
  return _eyelid_rotation_fields(f, 1.0, 6.0, 7.0)


def _lower_lid(f):
  return _eyelid_rotation_fields(f, -7.0, 5.0, 6.0)


def _rotation_profile(angle_per_unit):
  """Coefficients (cos(a) - 1, sin(a)) of a rotation by a = angle_per_unit * intensity."""
  def profile(intensity):
    angle = angle_per_unit * np.asarray(intensity, np.float64)
    return np.stack([np.cos(angle) - 1.0, np.sin(angle)], -1)
  return profile


def _cheek_puff(f):
  w = gauss_pair(f.x, f.y, 40.0, -35.0, 15.0, 14.0)
  lips = _lips_window(f)
  return (w[:, None] * 7.0 * f.normal + lips[:, None] * _vec(0.0, 0.0, 2.0))[None]


def _sneer(f):
  ala = gauss_pair(f.x, f.y, 13.0, -17.0, 7.0, 9.0)
  lip = gauss_pair(f.x, f.y, 12.0, MOUTH_Y + 5.0, 8.0, 5.0) * np.clip(f.side, 0.0, 1.0)
  return ((ala[:, None] * _vec(0.5 * f.lateral, 5.0, -1.0))
          + lip[:, None] * _vec(0.0, 3.0, 0.5))[None]


def _lip_press(f):
  w = _lips_window(f)[:, None]
  return (w * _vec(0.0, -0.35 * (f.y - MOUTH_Y), -3.0))[None]


def _mouth_stretch(f):
  w = _corners(f, 12.0, 12.0) + 0.4 * gauss_pair(f.x, f.y, 35.0, -65.0, 16.0, 14.0)
  return (w[:, None] * _vec(5.0 * f.lateral, -3.0, -2.0))[None]


def _frown(f):
  w = _corners(f, 10.0, 10.0)
  return (w[:, None] * _vec(1.5 * f.lateral, -6.0, -1.0))[None]


def _chin_raise(f):
  chin = gauss(f.x, f.y, 0.0, -74.0, 18.0, 11.0)
  lip = _lips_window(f) * np.clip(-f.side, 0.0, 1.0)
  return (chin[:, None] * _vec(0.0, 4.0, 3.0) + lip[:, None] * _vec(0.0, 1.5, 2.5))[None]


def _squint(f):
  cheek = gauss_pair(f.x, f.y, 38.0, -5.0, 15.0, 10.0)
  return (cheek[:, None] * _vec(0.0, 2.5, 1.0))[None]


# Held-out (performance-only) generators: expressions the learning set lacks.


def _lip_roll(f):
  w = _lips_window(f)
  rel = (f.y - MOUTH_Y) / 6.0
  return ((w[:, None] * _vec(0.0, -0.5 * (f.y - MOUTH_Y), -3.0 * rel ** 2 - 1.0)))[None]


def _nose_wrinkle(f):
  side = gauss_pair(f.x, f.y, 9.0, 6.0, 6.0, 8.0)
  dorsum = gauss(f.x, f.y, 0.0, 10.0, 6.0, 8.0)
  return (side[:, None] * _vec(-1.5 * f.lateral, 3.0, 0.5)
          + dorsum[:, None] * _vec(0.0, -1.5, 1.0))[None]


def _jaw_clench(f):
  w = gauss_pair(f.x, f.y, 68.0, -40.0, 12.0, 14.0)
  return (w[:, None] * 3.5 * f.normal)[None]


def _dimpler(f):
  w = _corners(f, 7.0, 7.0)
  return (w[:, None] * _vec(-2.5 * f.lateral, 0.5, -3.0))[None]


def _linear(intensity):
  return np.asarray(intensity, np.float64)[..., None]


def _linear_quadratic(intensity):
  a = np.asarray(intensity, np.float64)
  return np.stack([a, a * a], -1)


@dataclasses.dataclass(frozen=True)
class Expression:
  """A local non-rigid expression: delta(intensity) = sum_j profile(intensity)_j fields_j.

  Attributes:
    fields: FaceFrame -> (J, V, 3) mm basis displacement fields.
    profile: intensities (...) -> (..., J) coefficients; linear for most expressions, non-linear
      where the motion's direction changes with intensity (smile, eyelids).
  """
  fields: Callable[[FaceFrame], np.ndarray]
  profile: Callable[[np.ndarray], np.ndarray] = _linear

  def delta(self, frame: FaceFrame, intensity, window: Optional[np.ndarray] = None
            ) -> np.ndarray:
    """(..., V, 3) mm displacement at intensities (...), optionally times a (V,) window."""
    fields = self.fields(frame)
    if window is not None:
      fields = fields * window[None, :, None]
    return np.einsum('...j,jvd->...vd', self.profile(intensity), fields)


# The expression table shared by the learning shapes and the performance. Peak displacements at
# intensity 1 are 3-10 mm.
EXPRESSIONS = {
    'smile': Expression(_smile, _linear_quadratic),             # Corners up/out, then back.
    'pucker': Expression(_pucker),                              # Lips forward and together.
    'funnel': Expression(_funnel),                              # Lips forward, rounded open.
    'brow_raise': Expression(_brow_raise),                      # Brows and forehead up.
    'brow_lower': Expression(_brow_lower),                      # Brows down and together.
    'blink': Expression(_upper_lid, _rotation_profile(0.4)),    # Upper lids over the eyeballs.
    'cheek_puff': Expression(_cheek_puff),                      # Cheeks out along the normal.
    'sneer': Expression(_sneer),                                # Nose sides and upper lip up.
    'lip_press': Expression(_lip_press),                        # Lips thinned, pressed back.
    'mouth_stretch': Expression(_mouth_stretch),                # Corners out and down.
    'frown': Expression(_frown),                                # Corners down.
    'chin_raise': Expression(_chin_raise),                      # Chin and lower lip up/out.
    'squint': Expression(_lower_lid, _rotation_profile(-0.2)),  # Lower lids up.
    'cheek_raise': Expression(_squint),                         # Cheeks up (squint's partner).
    # Held out: never in the learning shapes.
    'lip_roll': Expression(_lip_roll),                          # Lips rolled in.
    'nose_wrinkle': Expression(_nose_wrinkle),                  # Nose sides up, bridge bunched.
    'jaw_clench': Expression(_jaw_clench),                      # Masseters bulge.
    'dimpler': Expression(_dimpler),                            # Corners in and back.
    'eye_wide': Expression(_upper_lid, _rotation_profile(-0.25)),  # Upper lids up.
}


@dataclasses.dataclass(frozen=True)
class ShapeRecipe:
  """One learning shape: a rigid mandible transform plus weighted expressions.

  Attributes:
    name: the shape's name.
    jaw: (open_deg, yaw_deg, translation (3,) mm) of the mandible about the pivot.
    expressions: ((expression name, intensity), ...).
  """
  name: str
  jaw: tuple = (0.0, 0.0, (0.0, 0.0, 0.0))
  expressions: tuple = ()


LEARNING_SHAPES = (
    ShapeRecipe('neutral'),
    ShapeRecipe('jaw_open_small', (8.0, 0.0, (0.0, 0.0, 0.0))),
    ShapeRecipe('jaw_open_medium', (16.0, 0.0, (0.0, -0.5, 1.5))),
    ShapeRecipe('jaw_open_wide', (25.0, 0.0, (0.0, -1.5, 4.0))),
    ShapeRecipe('jaw_left', (2.0, 4.0, (1.5, 0.0, 0.0))),
    ShapeRecipe('jaw_right', (2.0, -4.0, (-1.5, 0.0, 0.0))),
    ShapeRecipe('jaw_forward', (2.0, 0.0, (0.0, 0.0, 5.0))),
    ShapeRecipe('smile', expressions=(('smile', 1.0),)),
    ShapeRecipe('pucker', expressions=(('pucker', 1.0),)),
    ShapeRecipe('funnel', expressions=(('funnel', 1.0),)),
    ShapeRecipe('brow_raise', expressions=(('brow_raise', 1.0),)),
    ShapeRecipe('brow_lower', expressions=(('brow_lower', 1.0),)),
    ShapeRecipe('blink', expressions=(('blink', 1.0),)),
    ShapeRecipe('cheek_puff', expressions=(('cheek_puff', 1.0),)),
    ShapeRecipe('sneer', expressions=(('sneer', 1.0),)),
    ShapeRecipe('lip_press', expressions=(('lip_press', 1.0),)),
    ShapeRecipe('mouth_stretch', expressions=(('mouth_stretch', 1.0),)),
    ShapeRecipe('frown', expressions=(('frown', 1.0),)),
    ShapeRecipe('chin_raise', expressions=(('chin_raise', 1.0),)),
    ShapeRecipe('squint', expressions=(('squint', 1.0), ('cheek_raise', 1.0))),
)
SHAPE_NAMES = tuple(recipe.name for recipe in LEARNING_SHAPES)
