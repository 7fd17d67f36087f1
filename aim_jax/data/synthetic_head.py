"""The synthetic head's geometry: identity, face bone, cranium / mandible split, soft tissue.

Every surface is a radial function over the sphere of directions around `HEAD_CENTER`,
parametrised by azimuth `u` and elevation `v` (radians), with chart coordinates (X, Y) =
`CHART_RADIUS_MM` * (u, v) in which every feature is a Gaussian (the construction: `synthetic`'s
module docstring). Millimetres throughout; axes: +x the subject's left, +y up, +z forward.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from scipy import interpolate

HEAD_CENTER = np.zeros(3)  # mm; the centre of the spherical parametrisation.
CHART_RADIUS_MM = 100.0    # Chart coordinates (X, Y) = CHART_RADIUS_MM * (u, v).

DEG = np.pi / 180.0
# Skin domain (radians).
SKIN_HALF_WIDTH = 74.0 * DEG         # |u| of the skin's lateral edges (just in front of the ears).
SKIN_TOP = 40.0 * DEG                # v of the forehead edge.
MOUTH = -25.0 * DEG                  # v of the lip line (the mouth slit's row).
LIP_GAP_FRACTION = 0.3               # Lower-lip copies: this fraction of a row below the upper lip.
MOUTH_CORNER = 14.5 * DEG            # |u| of the mouth corners.
SKIN_BOTTOM_MARGIN = 3.0 * DEG       # The skin ends this far above the mandible's lower border.
# Mandible (radians, mm).
CONDYLE_AZIMUTH = 86.0 * DEG         # |u| of the ramus's posterior border and the condyles.
CONDYLE_ELEVATION = -3.0 * DEG       # v of the condyles (the split's height behind the cheek).
MANDIBLE_FRONT_BOTTOM = -56.0 * DEG  # v of the mandible's lower border at the chin (menton).
MANDIBLE_ANGLE_RISE = 8.0 * DEG      # How much the lower border rises toward the jaw angles.
MANDIBLE_THICKNESS_MM = 9.0          # Radial thickness of the mandible slab.
CRANIUM_GAP_MM = 4.0                 # The cranium lies this far behind the mandible (inner side).
THICKNESS_RANGE_MM = (3.0, 25.0)

# Chart landmarks (mm) shared by the thickness field and the expression generators.
MOUTH_Y = CHART_RADIUS_MM * MOUTH
CORNER_X = CHART_RADIUS_MM * MOUTH_CORNER
EYE = (33.0, 13.0)


# -------------------------------------------------------------------------------------------
# Identity.


@dataclasses.dataclass(frozen=True)
class Identity:
  """Seeded proportions of a synthetic face (all symmetric).

  Attributes:
    scale: overall size factor.
    half_width: mm, half-width of the cranium superquadric.
    front_depth: mm, forward reach of the face bone on the midline (before features).
    gains: multipliers of the bone and tissue features, by feature group name.
    thickness_gain: multiplier of the whole soft-tissue thickness field (before clipping).
    pivot_offset: (3,) mm, where the jaw pivot lies relative to the mid-point of the mandible's
      condyles (the condyle position varies between people; the mandible mesh is not reshaped).
  """
  scale: float
  half_width: float
  front_depth: float
  gains: dict
  thickness_gain: float = 1.0
  pivot_offset: tuple = (0.0, 0.0, 0.0)


_GAIN_GROUPS = ('brow', 'orbit', 'nose', 'cheekbone', 'chin', 'maxilla', 'tissue', 'cheek',
                'lips', 'nose_tissue', 'eye')
# Extra variation of every seed but 0 (seed 0 is the reference actor of the demo and of the
# README's numbers, kept as it was): (relative spread of scale, half-width, front depth, feature
# gains; log-spread of the thickness gain; pivot offset spread (y, z) mm). Normal draws are
# clipped to +-2 spreads.
DIVERSITY = dict(scale=0.04, half_width=0.07, front_depth=0.06, gains=0.15, thickness=0.15,
                 pivot_mm=(3.0, 4.0))


def make_identity(seed: int) -> Identity:
  """The identity of seed `seed`.

  Seed 0 is the reference face (proportions within a few percent of the nominal ones, feature
  gains within ~10 %), unchanged since the demo model was learned. Every other seed adds a
  clearly different skull (size +-4 %, width +-7 %, depth +-6 %, feature gains +-15 %), soft
  tissue (the whole thickness field times exp(N(0, 0.15)), i.e. about 0.75-1.35) and jaw pivot
  (offset N(0, 3) mm up/down and N(0, 4) mm forward/back from the condyles), all symmetric, so
  that actor pairs differ in the ways retargeting must handle (`DIVERSITY`).
  """
  rng = np.random.default_rng(seed)

  def normal(size=None, generator=rng):
    return np.clip(generator.standard_normal(size), -2.0, 2.0)

  gains = dict(zip(_GAIN_GROUPS, 1.0 + 0.08 * normal(len(_GAIN_GROUPS))))
  identity = Identity(scale=float(1.0 + 0.02 * normal()),
                      half_width=float(67.0 * (1.0 + 0.02 * normal())),
                      front_depth=float(90.0 * (1.0 + 0.02 * normal())),
                      gains={k: float(v) for k, v in gains.items()})
  if seed == 0:
    return identity
  extra = np.random.default_rng([seed, 7919])  # Independent of the draws above.
  d = DIVERSITY
  more = 1.0 + d['gains'] * normal(len(_GAIN_GROUPS), extra)
  return dataclasses.replace(
      identity,
      scale=float(identity.scale * (1.0 + d['scale'] * normal(None, extra))),
      half_width=float(identity.half_width * (1.0 + d['half_width'] * normal(None, extra))),
      front_depth=float(identity.front_depth * (1.0 + d['front_depth'] * normal(None, extra))),
      gains={k: float(v * m) for (k, v), m in zip(identity.gains.items(), more)},
      thickness_gain=float(np.exp(d['thickness'] * normal(None, extra))),
      pivot_offset=(0.0, float(d['pivot_mm'][0] * normal(None, extra)),
                    float(d['pivot_mm'][1] * normal(None, extra))))


# -------------------------------------------------------------------------------------------
# Small numpy helpers.


def smoothstep(t: np.ndarray) -> np.ndarray:
  """C1 ramp: 0 for t <= 0, 1 for t >= 1, 3t^2 - 2t^3 between."""
  t = np.clip(t, 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def direction(u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """(..., 3) unit direction of azimuth u and elevation v (radians)."""
  cos_v = np.cos(v)
  return np.stack([cos_v * np.sin(u), np.sin(v) * np.ones_like(u), cos_v * np.cos(u)], -1)


def angles_of(points: np.ndarray) -> tuple:
  """Azimuth u and elevation v (radians) of (..., 3) points seen from HEAD_CENTER."""
  p = np.asarray(points, np.float64) - HEAD_CENTER
  u = np.arctan2(p[..., 0], p[..., 2])
  v = np.arctan2(p[..., 1], np.hypot(p[..., 0], p[..., 2]))
  return u, v


def gauss(x, y, x0, y0, sx, sy):
  """Unnormalised Gaussian in the chart: peak 1 at (x0, y0) mm, widths (sx, sy) mm."""
  return np.exp(-0.5 * ((x - x0) / sx) ** 2 - 0.5 * ((y - y0) / sy) ** 2)


def gauss_pair(x, y, x0, y0, sx, sy):
  """A Gaussian at (x0, y0) plus its mirror image at (-x0, y0) (one Gaussian if x0 == 0)."""
  g = gauss(x, y, x0, y0, sx, sy)
  return g if x0 == 0 else g + gauss(x, y, -x0, y0, sx, sy)


def _ridge(x, y, y0, sx, sy_up, sy_down, height):
  """A midline ridge: Gaussian across x, skewed Gaussian along y (sy_up above y0, else sy_down)."""
  sy = np.where(y >= y0, sy_up, sy_down)
  return height * np.exp(-0.5 * (x / sx) ** 2 - 0.5 * ((y - y0) / sy) ** 2)


def _features(x, y, table, gains):
  """Sum of mirrored Gaussian features (x0, y0, sx, sy, amplitude mm, gain group) at (x, y)."""
  total = np.zeros(np.broadcast(x, y).shape)
  for x0, y0, sx, sy, amplitude, group in table:
    total += amplitude * gains.get(group, 1.0) * gauss_pair(x, y, x0, y0, sx, sy)
  return total


# -------------------------------------------------------------------------------------------
# The face bone, the split curve, the cranium retreat.


# Bone features in the chart: (x0, y0, sx, sy, amplitude mm, gain group); x0 > 0 is mirrored.
BONE_FEATURES = (
    (28.0, 31.0, 17.0, 8.0, 3.5, 'brow'),          # Brow ridges (supraorbital margins).
    (0.0, 31.0, 12.0, 8.0, 2.5, 'brow'),           # Glabella.
    (33.0, 13.0, 18.0, 15.0, -5.0, 'orbit'),       # Orbits (eye sockets).
    (0.0, 23.0, 9.0, 6.0, -1.5, 'orbit'),          # Nasion.
    (16.0, -12.0, 9.0, 8.0, -1.0, 'nose'),         # Piriform (nasal aperture) margins.
    (50.0, 1.0, 17.0, 12.0, 6.0, 'cheekbone'),     # Cheekbones (zygomatic bodies).
    (92.0, 3.0, 25.0, 7.0, 3.0, 'cheekbone'),      # Zygomatic arches.
    (0.0, -38.0, 26.0, 10.0, 3.0, 'maxilla'),      # Maxillary alveolar process.
    (0.0, -77.0, 15.0, 10.0, 7.0, 'chin'),         # Chin (mental protuberance).
    (14.0, -81.0, 9.0, 7.0, 1.0, 'chin'),          # Mental tubercles.
    (145.0, -85.0, 14.0, 14.0, 3.0, 'maxilla'),    # Jaw angles (gonion).
)
# Nasal ridges: (y0, sx, sy above y0, sy below y0, height mm), each a ridge along the midline.
# The nasal bones are narrow (their tissue is thin); the lower nose rests on a broad base, whose
# concave foot stays gentle under the thick tissue of the alae and cheeks (the narrow lower nose
# itself is soft tissue, TISSUE_FEATURES).
NOSE_RIDGES = (
    (2.0, 6.5, 14.0, 8.0, 8.0),     # Nasal bones, peaking at the rhinion.
    (-12.0, 10.0, 12.0, 14.0, 7.0),  # Base of the lower nose (stand-in for the cartilages).
)


def face_bone_radius(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """(...) mm distance from HEAD_CENTER to the face bone (the outer bone surface) at (u, v)."""
  d = direction(u, v)
  dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
  width = identity.half_width * (1.0 - 0.3 * np.minimum(dy, 0.0) ** 2)
  depth = np.where(dz >= 0.0, identity.front_depth, 98.0)
  height = np.where(dy >= 0.0, 88.0, 118.0)
  p, q = 2.4, 2.0
  horizontal = (np.abs(dx / width) ** p + np.abs(dz / depth) ** p) ** (q / p)
  base = (horizontal + np.abs(dy / height) ** q) ** (-1.0 / q)
  x, y = CHART_RADIUS_MM * u, CHART_RADIUS_MM * v
  gains = identity.gains
  features = _features(x, y, BONE_FEATURES, gains)
  for ridge in NOSE_RIDGES:
    features += gains['nose'] * _ridge(x, y, *ridge)
  return identity.scale * (base + features)


def split_elevation(u: np.ndarray) -> np.ndarray:
  """(...) v of the cranium / mandible split: the lip line, rising to the condyles laterally."""
  t = (np.abs(u) - MOUTH_CORNER) / (CONDYLE_AZIMUTH - MOUTH_CORNER)
  return MOUTH + (CONDYLE_ELEVATION - MOUTH) * smoothstep(t)


def mandible_bottom(u: np.ndarray) -> np.ndarray:
  """(...) v of the mandible's lower border (menton at u = 0, rising toward the jaw angles)."""
  return MANDIBLE_FRONT_BOTTOM + MANDIBLE_ANGLE_RISE * np.minimum(
      (u / CONDYLE_AZIMUTH) ** 2, 1.0)


def cranium_radius(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """(...) mm cranium radius: the face bone above the split, pulled in below it.

  Below the split the cranium retreats behind the mandible (by its thickness plus a gap, within
  4 degrees of the split), and further below the mandible's lower border (the skull base).
  The retreat and its derivative vanish on and above the split, so there the cranium and the face
  bone share points and normals.
  """
  below = split_elevation(u) - v
  retreat = (MANDIBLE_THICKNESS_MM + CRANIUM_GAP_MM) * smoothstep(below / (4.0 * DEG))
  retreat += 45.0 * smoothstep((mandible_bottom(u) - v) / (25.0 * DEG))
  return face_bone_radius(identity, u, v) - identity.scale * retreat


def surface_points(radius_fn: Callable, u: np.ndarray, v: np.ndarray,
                   step: float = 1e-5) -> tuple:
  """Points and unit outward normals of the radial surface `radius_fn(u, v)`.

  Args:
    radius_fn: (u, v) -> (...) mm radius about HEAD_CENTER.
    u, v: (...) radians, |v| < 90 degrees.
    step: radians, central-difference step of the radius's derivatives.
  Returns:
    points (..., 3) mm and normals (..., 3) unit (float64).
  """
  u = np.asarray(u, np.float64)
  v = np.asarray(v, np.float64)
  r = radius_fn(u, v)
  r_u = (radius_fn(u + step, v) - radius_fn(u - step, v)) / (2.0 * step)
  r_v = (radius_fn(u, v + step) - radius_fn(u, v - step)) / (2.0 * step)
  d = direction(u, v)
  e_u = np.stack([np.cos(u), np.zeros_like(u), -np.sin(u)], -1)  # d(d)/du / cos v.
  e_v = np.stack([-np.sin(v) * np.sin(u), np.cos(v), -np.sin(v) * np.cos(u)], -1)
  # Gradient of |x| - r(u, v): radial minus the tangential slopes of r.
  normal = (d - (r_u / (r * np.cos(v)))[..., None] * e_u - (r_v / r)[..., None] * e_v)
  normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
  return HEAD_CENTER + r[..., None] * d, normal


# -------------------------------------------------------------------------------------------
# Soft tissue.


# Tissue depth (mm) on and near the midline by chart height Y (Rhine 1983 midline depths, plus
# the eyes' and cheeks' levels laterally); interpolated smoothly (PCHIP) in Y.
_DEPTH_KNOTS_Y = (-110.0, -90.0, -76.0, -62.0, -48.0, -36.0, -20.0, 0.0, 14.0, 24.0, 33.0, 45.0,
                  80.0)
_DEPTH_KNOTS_MM = (7.0, 8.0, 11.5, 10.5, 12.0, 10.0, 10.0, 7.0, 6.0, 6.5, 4.8, 4.5, 4.5)
# Tissue features: (x0, y0, sx, sy, amplitude mm, gain group); x0 > 0 is mirrored.
TISSUE_FEATURES = (
    (0.0, 9.0, 5.0, 7.0, -4.0, 'nose_tissue'),     # Thin skin over the nasal bones (rhinion).
    (10.5, -12.0, 5.0, 4.0, 4.0, 'nose_tissue'),   # Alae (nostril wings).
    (4.0, -17.0, 4.0, 3.0, -3.0, 'nose_tissue'),   # Nostrils (the columella's sides).
    (0.0, -16.0, 12.0, 3.0, -2.0, 'nose_tissue'),  # Under the nose (subnasale).
    (42.0, -28.0, 17.0, 14.0, 9.0, 'cheek'),       # Cheeks (buccal fat, supra-M2).
    (62.0, -42.0, 15.0, 16.0, 5.0, 'cheek'),       # Masseters.
    (33.0, 12.0, 9.0, 5.5, 3.0, 'eye'),            # Eyeballs under the lids.
    (34.0, 21.5, 11.0, 1.8, -1.5, 'eye'),          # Upper eyelid creases.
    (34.0, 5.0, 10.0, 2.0, -1.5, 'eye'),           # Lower eyelid margins.
    (0.0, -73.0, 14.0, 7.0, 1.0, 'chin'),          # Chin pad (pogonion).
    (0.0, -63.0, 22.0, 3.0, -2.0, 'chin'),         # Labiomental fold.
    (17.0, -30.0, 4.0, 12.0, -1.2, 'cheek'),       # Nasolabial folds.
)


# The nose tip (pronasale) as tissue over the nasal base: (y0, sx, sy up, sy down, height mm);
# it ends sharply below (the columella and the nostrils).
NOSE_TIP = (-6.0, 6.5, 7.0, 3.5, 10.0)


def _band(y, y0, sy):
  return np.exp(-0.5 * ((y - y0) / sy) ** 2)


def lip_profile(x: np.ndarray) -> np.ndarray:
  """Across-the-mouth envelope of the lips: 1 in the middle, ~0.3 at the mouth corners."""
  return np.exp(-0.5 * (x / (0.8 * CORNER_X)) ** 4)


def thickness_field(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """(...) mm soft-tissue thickness at (u, v), clipped to THICKNESS_RANGE_MM.

  For the default identity (others within ~10 %): forehead 5, glabella 5.5, nasion 6.5,
  rhinion 3-4, nose tip 18, philtrum 12, vermilion 16-19, supramentale 10, pogonion 13.5,
  menton 9, supraorbital 6, suborbital 9, inferior malar 11, cheeks 22, masseters 20, zygomatic
  arch 7, gonion 12, temples 6, eyes 11.5 (eyeball and lids over the orbit).
  """
  x, y = CHART_RADIUS_MM * np.asarray(u), CHART_RADIUS_MM * np.asarray(v)
  gains = identity.gains
  base = interpolate.PchipInterpolator(_DEPTH_KNOTS_Y, _DEPTH_KNOTS_MM, extrapolate=True)(
      np.clip(y, _DEPTH_KNOTS_Y[0], _DEPTH_KNOTS_Y[-1]))
  depth = gains['tissue'] * base + _features(x, y, TISSUE_FEATURES, gains)
  depth += gains['nose_tissue'] * _ridge(x, y, *NOSE_TIP)
  lips = (3.5 * _band(y, MOUTH_Y + 4.0, 3.0)   # Upper vermilion.
          + 5.5 * _band(y, MOUTH_Y - 5.0, 3.5)  # Lower vermilion.
          - 2.5 * _band(y, MOUTH_Y, 1.0))       # Lip line groove.
  depth += gains['lips'] * lip_profile(x) * lips
  if identity.thickness_gain != 1.0:
    depth = identity.thickness_gain * depth
  return np.clip(depth, *THICKNESS_RANGE_MM)


def skinning_field(u: np.ndarray, v: np.ndarray, lower_lip: np.ndarray) -> np.ndarray:
  """(...) jaw skinning weight in [0, 1].

  0 on and above the split (the whole upper face, upper lip included); below it rises to 1 over a
  band 4 degrees wide at the mouth and 12 degrees wide on the cheeks. The lower lip (the lower
  copies of the mouth slit's vertices) is 1 in the middle of the mouth, tapering to 0 at the
  corners (which stay with the upper face), so the mouth opens to a lens shape.
  """
  below = split_elevation(u) - v
  band = (4.0 + 8.0 * smoothstep((np.abs(u) - MOUTH_CORNER) / (20.0 * DEG))) * DEG
  lip = smoothstep((MOUTH_CORNER - np.abs(u)) / (12.0 * DEG))
  k = smoothstep(below / band + lip)
  return np.where((below > 0.0) | lower_lip, k, 0.0)
