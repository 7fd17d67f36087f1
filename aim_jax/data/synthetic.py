"""The synthetic actor: a procedural, seeded face with ground truth for everything.

The package's embedded default actor (DESIGN.md section 2, 'synthetic'). Millimetres throughout;
axes: +x the subject's left, +y up, +z forward (out of the face).

Construction
------------
Every surface is a radial function over the sphere of directions around `HEAD_CENTER`,
parametrised by azimuth `u` (about +y; 0 = forward, positive toward +x) and elevation `v`
(positive up), both in radians. The *chart* coordinates of a direction are (X, Y) =
`CHART_RADIUS_MM` * (u, v): millimetres on the face, roughly; every feature below is a Gaussian
in the chart.

- The *face bone* `r(u, v)`: a superquadric (flatter at the front, narrower toward the jaw) plus
  Gaussian features: brow ridge and glabella, two orbits (eye sockets), nasion, a forward nasal
  ridge (nasal bone and, standing in for the cartilage, its continuation to the nose tip),
  piriform (nasal aperture) depressions beside it, cheekbones and zygomatic arches, the maxillary
  alveolar process, the chin and the jaw angles.
- A *split curve* `v = split(u)` divides it: the lip line across the mouth, rising from each mouth
  corner through the cheek to a condyle in front of the ear. The **mandible** is the face bone
  below the split: a U-shaped slab, MANDIBLE_THICKNESS_MM thick, whose top-back corners are the
  condyles (the actor's pivot is their mid-point). The **cranium** (skull + maxilla) is the face
  bone above the split, closed around the back of the head and pulled in below the split so that
  it lies behind the mandible (the two touch only along the split). Both are closed meshes.
- The *skin* is a grid over (u, v) from the forehead to under the chin and ear to ear, built as
  `skin = bone_point + thickness * bone_normal` with the bone point on the face bone at the
  vertex's (u, v) (cranium above the split, mandible below) and the analytic unit normal there.
  The thickness field follows published soft-tissue depths (`paper/aim_method_notes.md`) and adds
  the soft features: nose, lips, eyelids over the orbits. The grid row on the lip line is split
  along the mouth (duplicated vertices: the *mouth slit*), so the lips part when the jaw opens.
- Shapes follow the AIM skinning model with ground-truth quantities,
  `s_i = (1 - k) s0 + k (R_i (s0 - p) + p + t_i) + e_i` (`skin_points`), with `e_i` from a small
  table of local expression generators (`EXPRESSIONS`) shared by the learning shapes
  (`LEARNING_SHAPES`) and the held-out performance (`make_performance`).

Identity variation with the seed changes the head's size and proportions and the amplitudes of
bone features and tissue depths (symmetrically); the chart positions of the features are fixed,
so the expression generators work on every identity. Seed 0 (the demo actor) varies by a few
percent; every other seed also gets a clearly different skull, tissue thickness and jaw pivot
(`make_identity`), so actor pairs exercise retargeting. `performance_controls` + `perform` play
one performance recipe on any actor: the ground truth of retargeting between two actors.

Simplifications: the skin is one sheet with no eye or nostril openings (blinks close the lids
part way, compressing the skin over the eye); the nose's cartilage is modelled as a forward
ridge of the face bone plus soft tissue; the mandible has no coronoid notch and its condyles
are the slab's corners; the region between cheekbone and jaw is bone (the mandible's outer plate
continues the maxilla's), where a real skull has the mouth cavity.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional

import numpy as np
from scipy import interpolate

from aim_jax.data.actor import Actor, GroundTruth, Mesh, make_actor

HEAD_CENTER = np.zeros(3)  # mm; the centre of the spherical parametrisation.
CHART_RADIUS_MM = 100.0    # Chart coordinates (X, Y) = CHART_RADIUS_MM * (u, v).

_DEG = np.pi / 180.0
# Skin domain (radians).
SKIN_HALF_WIDTH = 74.0 * _DEG   # |u| of the skin's lateral edges (just in front of the ears).
SKIN_TOP = 40.0 * _DEG          # v of the forehead edge.
MOUTH = -25.0 * _DEG            # v of the lip line (the mouth slit's row).
LIP_GAP_FRACTION = 0.3          # Lower-lip copies: this fraction of a row below the upper lip.
MOUTH_CORNER = 14.5 * _DEG      # |u| of the mouth corners.
SKIN_BOTTOM_MARGIN = 3.0 * _DEG  # The skin ends this far above the mandible's lower border.
# Mandible (radians, mm).
CONDYLE_AZIMUTH = 86.0 * _DEG   # |u| of the ramus's posterior border and the condyles.
CONDYLE_ELEVATION = -3.0 * _DEG  # v of the condyles (the split's height behind the cheek).
MANDIBLE_FRONT_BOTTOM = -56.0 * _DEG  # v of the mandible's lower border at the chin (menton).
MANDIBLE_ANGLE_RISE = 8.0 * _DEG      # How much the lower border rises toward the jaw angles.
MANDIBLE_THICKNESS_MM = 9.0     # Radial thickness of the mandible slab.
CRANIUM_GAP_MM = 4.0            # The cranium lies this far behind the mandible's inner surface.
THICKNESS_RANGE_MM = (3.0, 25.0)

# Chart landmarks (mm) shared by the thickness field and the expression generators.
_MOUTH_Y = CHART_RADIUS_MM * MOUTH
_CORNER_X = CHART_RADIUS_MM * MOUTH_CORNER
_EYE = (33.0, 13.0)


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


def _gauss(x, y, x0, y0, sx, sy):
  return np.exp(-0.5 * ((x - x0) / sx) ** 2 - 0.5 * ((y - y0) / sy) ** 2)


def _pair(x, y, x0, y0, sx, sy):
  """A Gaussian at (x0, y0) plus its mirror image at (-x0, y0) (one Gaussian if x0 == 0)."""
  g = _gauss(x, y, x0, y0, sx, sy)
  return g if x0 == 0 else g + _gauss(x, y, -x0, y0, sx, sy)


def _ridge(x, y, y0, sx, sy_up, sy_down, height):
  """A midline ridge: Gaussian across x, skewed Gaussian along y (sy_up above y0, else sy_down)."""
  sy = np.where(y >= y0, sy_up, sy_down)
  return height * np.exp(-0.5 * (x / sx) ** 2 - 0.5 * ((y - y0) / sy) ** 2)


def _features(x, y, table, gains):
  """Sum of mirrored Gaussian features (x0, y0, sx, sy, amplitude mm, gain group) at (x, y)."""
  total = np.zeros(np.broadcast(x, y).shape)
  for x0, y0, sx, sy, amplitude, group in table:
    total += amplitude * gains.get(group, 1.0) * _pair(x, y, x0, y0, sx, sy)
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
  retreat = (MANDIBLE_THICKNESS_MM + CRANIUM_GAP_MM) * smoothstep(below / (4.0 * _DEG))
  retreat += 45.0 * smoothstep((mandible_bottom(u) - v) / (25.0 * _DEG))
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


def _lip_profile(x: np.ndarray) -> np.ndarray:
  """Across-the-mouth envelope of the lips: 1 in the middle, ~0.3 at the mouth corners."""
  return np.exp(-0.5 * (x / (0.8 * _CORNER_X)) ** 4)


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
  lips = (3.5 * _band(y, _MOUTH_Y + 4.0, 3.0)   # Upper vermilion.
          + 5.5 * _band(y, _MOUTH_Y - 5.0, 3.5)  # Lower vermilion.
          - 2.5 * _band(y, _MOUTH_Y, 1.0))       # Lip line groove.
  depth += gains['lips'] * _lip_profile(x) * lips
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
  band = (4.0 + 8.0 * smoothstep((np.abs(u) - MOUTH_CORNER) / (20.0 * _DEG))) * _DEG
  lip = smoothstep((MOUTH_CORNER - np.abs(u)) / (12.0 * _DEG))
  k = smoothstep(below / band + lip)
  return np.where((below > 0.0) | lower_lip, k, 0.0)


# -------------------------------------------------------------------------------------------
# Meshes.


def grid_faces(rows: int, cols: int) -> np.ndarray:
  """(2 (rows-1) (cols-1), 3) int32 triangles of a row-major rows x cols grid.

  Counter-clockwise seen from outside when columns run toward +u and rows toward +v; the quads'
  diagonals are mirrored about the middle column, so the triangulation is left-right symmetric.
  """
  r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing='ij')
  a = r * cols + c
  b, d, e = a + 1, a + cols, a + cols + 1
  left = (2 * c + 1 < cols - 1)[..., None]  # Quads left of the middle column.
  first = np.where(left, np.stack([a, b, e], -1), np.stack([a, b, d], -1))
  second = np.where(left, np.stack([a, e, d], -1), np.stack([b, e, d], -1))
  return np.concatenate([first.reshape(-1, 3), second.reshape(-1, 3)]).astype(np.int32)


def sphere_mesh(radius_fn: Callable, step_deg: float) -> Mesh:
  """A closed star-shaped mesh r = radius_fn(u, v) on a latitude-longitude grid.

  Args:
    radius_fn: (u, v) -> (...) mm radius about HEAD_CENTER.
    step_deg: grid spacing in degrees (both angles).
  Returns:
    Mesh with outward-wound triangles; the poles are single vertices.
  """
  num_lon = int(round(360.0 / step_deg))
  num_lat = int(round(180.0 / step_deg)) - 1
  u = np.linspace(-np.pi, np.pi, num_lon, endpoint=False)
  v = np.linspace(-np.pi / 2, np.pi / 2, num_lat + 2)[1:-1]
  vv, uu = np.meshgrid(v, u, indexing='ij')
  points = HEAD_CENTER + radius_fn(uu, vv)[..., None] * direction(uu, vv)
  poles = np.array([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
  pole_points = HEAD_CENTER + radius_fn(np.zeros(2), np.array([-np.pi / 2, np.pi / 2]))[
      :, None] * poles
  vertices = np.concatenate([points.reshape(-1, 3), pole_points])
  south, north = num_lat * num_lon, num_lat * num_lon + 1
  r, c = np.meshgrid(np.arange(num_lat - 1), np.arange(num_lon), indexing='ij')
  a = r * num_lon + c
  b = r * num_lon + (c + 1) % num_lon
  d, e = a + num_lon, b + num_lon
  faces = [np.stack([a, b, e], -1).reshape(-1, 3), np.stack([a, e, d], -1).reshape(-1, 3)]
  c = np.arange(num_lon)
  faces.append(np.stack([np.full(num_lon, south), (c + 1) % num_lon, c], -1))
  top = (num_lat - 1) * num_lon
  faces.append(np.stack([np.full(num_lon, north), top + c, top + (c + 1) % num_lon], -1))
  return Mesh(vertices.astype(np.float32), np.concatenate(faces).astype(np.int32))


def slab_mesh(outer: np.ndarray, inner: np.ndarray) -> Mesh:
  """A closed mesh between two (n, m, 3) grids of the same layout (a thickened sheet).

  Args:
    outer: (n, m, 3) mm outer surface; index 0 runs toward +u, index 1 toward +v (so that
      outward is the side the grid's normals face).
    inner: (n, m, 3) mm inner surface, behind `outer`.
  Returns:
    Mesh: outer and inner grids plus side walls along the four edges, outward wound.
  """
  n, m = outer.shape[:2]
  count = n * m
  # grid_faces takes rows x cols with rows toward +v: transpose to (m, n).
  faces_grid = grid_faces(m, n)
  index = np.arange(count).reshape(m, n)  # index[j, i]: vertex i along u, j along v.
  vertices = np.concatenate([np.swapaxes(outer, 0, 1).reshape(-1, 3),
                             np.swapaxes(inner, 0, 1).reshape(-1, 3)])
  faces = [faces_grid, faces_grid[:, ::-1] + count]
  # Boundary loop, counter-clockwise seen from outside: bottom (+u), right (+v), top (-u),
  # left (-v).
  loop = np.concatenate([index[0, :-1], index[:-1, -1], index[-1, :0:-1], index[:0:-1, 0]])
  nxt = np.roll(loop, -1)
  faces.append(np.stack([loop, loop + count, nxt + count], -1))
  faces.append(np.stack([loop, nxt + count, nxt], -1))
  return Mesh(vertices.astype(np.float32), np.concatenate(faces).astype(np.int32))


def _mandible(identity: Identity, step_deg: float) -> tuple:
  """The mandible slab mesh and its two condyles (2, 3) mm."""
  n = 2 * int(round(CONDYLE_AZIMUTH / _DEG / step_deg)) + 1
  m = int(round(55.0 / step_deg)) + 1
  s = np.linspace(-1.0, 1.0, n)
  u = CONDYLE_AZIMUTH * 0.5 * (s - s[::-1])
  t = np.linspace(0.0, 1.0, m)
  uu = np.repeat(u[:, None], m, 1)
  bottom, top = mandible_bottom(uu), split_elevation(uu)
  vv = bottom + t[None, :] * (top - bottom)
  radius = face_bone_radius(identity, uu, vv)
  d = direction(uu, vv)
  width = identity.scale * _mandible_width(uu, vv)
  outer = HEAD_CENTER + radius[..., None] * d
  inner = HEAD_CENTER + (radius - width)[..., None] * d
  condyles = 0.5 * (outer[[0, -1], -1] + inner[[0, -1], -1])
  return slab_mesh(outer, inner), condyles


def _mandible_width(u, v):
  """(...) mm radial thickness of the mandible: ~9 on the body, 12 at the chin."""
  x, y = CHART_RADIUS_MM * u, CHART_RADIUS_MM * v
  return MANDIBLE_THICKNESS_MM + 3.0 * _gauss(x, y, 0.0, -78.0, 16.0, 10.0)


# -------------------------------------------------------------------------------------------
# The skin grid.


@dataclasses.dataclass(frozen=True)
class SkinLayout:
  """Parameters of the skin vertices and the skin triangles.

  Attributes:
    u, v: (V,) radians, the bone-surface parameters of each skin vertex.
    lower_lip: (V,) bool, the lower copies of the mouth slit's vertices.
    faces: (F, 3) int32.
    rows, cols: the grid's size (the first rows * cols vertices, row-major, rows toward +v).
    slit_row: the grid row on the lip line.
    slit_cols: (L,) the slit's grid columns; lower copies are vertices rows * cols + [0, L).
  """
  u: np.ndarray
  v: np.ndarray
  lower_lip: np.ndarray
  faces: np.ndarray
  rows: int
  cols: int
  slit_row: int
  slit_cols: np.ndarray

  def mirror_index(self) -> np.ndarray:
    """(V,) exact mirror partner of each vertex (same row, mirrored column, same lip copy)."""
    grid = np.arange(self.rows * self.cols).reshape(self.rows, self.cols)[:, ::-1].ravel()
    position = {int(c): i for i, c in enumerate(self.slit_cols)}
    lips = np.array([position[self.cols - 1 - int(c)] for c in self.slit_cols], np.int64)
    return np.concatenate([grid, self.rows * self.cols + lips]).astype(np.int32)


def skin_layout(resolution: int) -> SkinLayout:
  """The skin's (u, v) grid with the mouth slit, symmetric about u = 0.

  Args:
    resolution: grid vertices per side (rounded up to odd, so a column lies on the midline).
  Returns:
    SkinLayout with about (resolution + 1)^2 vertices.
  """
  if resolution < 8:
    raise ValueError(f'synthetic actor resolution must be >= 8, got {resolution}')
  cols = rows = resolution + 1 - resolution % 2
  a = np.linspace(-1.0, 1.0, cols)
  u_col = SKIN_HALF_WIDTH * 0.5 * (a - a[::-1])  # Exactly antisymmetric.
  bottom = mandible_bottom(u_col) + SKIN_BOTTOM_MARGIN
  slit_row = int(round((rows - 1) * (MOUTH - bottom[cols // 2]) / (SKIN_TOP - bottom[cols // 2])))
  i = np.arange(rows)[:, None]
  upper = MOUTH + (SKIN_TOP - MOUTH) * (i - slit_row) / (rows - 1 - slit_row)
  lower = bottom[None, :] + (MOUTH - bottom[None, :]) * i / slit_row
  v_grid = np.where(i >= slit_row, upper, lower)
  u_grid = np.broadcast_to(u_col, (rows, cols))
  faces = grid_faces(rows, cols)
  slit_cols = np.flatnonzero(np.abs(u_col) < MOUTH_CORNER - 1e-9)
  # Triangles below the slit row use the lower copies of its slit vertices.
  count = rows * cols
  lower_copy = np.full(count, -1)
  lower_copy[slit_row * cols + slit_cols] = count + np.arange(slit_cols.size)
  below = np.all(faces // cols <= slit_row, axis=1)
  remap = faces[below]
  swap = lower_copy[remap] >= 0
  remap[swap] = lower_copy[remap][swap]
  faces[below] = remap
  u = np.concatenate([u_grid.ravel(), u_col[slit_cols]])
  # The lower-lip copies sit a little below the upper ones (lips closed but not coincident, as
  # on a registered scan), so every vertex has its own template point for an implicit model.
  gap = LIP_GAP_FRACTION * (MOUTH - v_grid[slit_row - 1, slit_cols])
  v = np.concatenate([v_grid.ravel(), MOUTH - gap])
  lower_lip = np.zeros(u.size, bool)
  lower_lip[count:] = True
  return SkinLayout(u=u, v=v, lower_lip=lower_lip, faces=faces.astype(np.int32), rows=rows,
                    cols=cols, slit_row=slit_row, slit_cols=slit_cols)


# -------------------------------------------------------------------------------------------
# Jaw motion and the skinning model.


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


def skin_points(points: np.ndarray, k: np.ndarray, rotation: np.ndarray,
                translation: np.ndarray, pivot: np.ndarray) -> np.ndarray:
  """The AIM jaw skinning: (1 - k) x + k (R (x - p) + p + t).

  Args:
    points: (V, 3) mm.
    k: (V,) skinning weights in [0, 1].
    rotation: (..., 3, 3) mandible rotations about the pivot.
    translation: (..., 3) mm mandible translations.
    pivot: (3,) mm.
  Returns:
    (..., V, 3) mm skinned points (float64).
  """
  points = np.asarray(points, np.float64)
  rotation = np.asarray(rotation, np.float64)
  translation = np.asarray(translation, np.float64)
  pivot = np.asarray(pivot, np.float64)
  moved = (np.einsum('...ij,vj->...vi', rotation, points - pivot) + pivot
           + translation[..., None, :])
  k = np.asarray(k, np.float64)[:, None]
  return (1.0 - k) * points + k * moved


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
  mouth = 1.0 - smoothstep((np.abs(x) - (_CORNER_X - 5.0)) / 5.0)
  lip = np.where(ground_truth.bone_id == 0, 1.0, -1.0)
  side = mouth * lip + (1.0 - mouth) * np.tanh((y - _MOUTH_Y) / 3.0)
  return FaceFrame(x=x, y=y, normal=np.asarray(ground_truth.bone_normal, np.float64),
                   side=side, lateral=np.tanh(x / 4.0))


def left_window(frame: FaceFrame, width_mm: float = 6.0) -> np.ndarray:
  """(V,) smooth window: 1 on the subject's left (+x), 0 on the right, 0.5 on the midline."""
  return 0.5 * (1.0 + np.tanh(frame.x / width_mm))


def _vec(*components):
  """(V, 3) field from three (V,) (or scalar) components."""
  return np.stack(np.broadcast_arrays(*components), -1).astype(np.float64)


def _lips_window(f: FaceFrame) -> np.ndarray:
  return _lip_profile(f.x) * np.exp(-0.5 * ((f.y - _MOUTH_Y) / 9.0) ** 2)


def _corners(f: FaceFrame, sx=10.0, sy=9.0) -> np.ndarray:
  return _pair(f.x, f.y, _CORNER_X, _MOUTH_Y, sx, sy)


def _smile(f):
  w = _corners(f, 12.0, 10.0) + 0.35 * _pair(f.x, f.y, 40.0, -20.0, 14.0, 10.0)
  up_out = w[:, None] * _vec(3.0 * f.lateral, 6.0, 0.0)
  back = w[:, None] * _vec(1.0 * f.lateral, 0.0, -4.0)
  return np.stack([up_out, back])


def _pucker(f):
  w = _lips_window(f)[:, None]
  return (w * _vec(-0.3 * f.x, -0.25 * (f.y - _MOUTH_Y), 9.0))[None]


def _funnel(f):
  w = _lips_window(f)[:, None]
  return (w * _vec(-0.15 * f.x, 3.0 * f.side, 6.0))[None]


def _brow_raise(f):
  w = _pair(f.x, f.y, 28.0, 31.0, 20.0, 10.0) + 0.5 * _gauss(f.x, f.y, 0.0, 45.0, 45.0, 18.0)
  return (w[:, None] * _vec(0.0, 7.0, 1.0))[None]


def _brow_lower(f):
  w = _pair(f.x, f.y, 22.0, 28.0, 13.0, 8.0)
  return (w[:, None] * _vec(-3.0 * f.lateral, -4.0, 1.5))[None]


def _eyelid_rotation_fields(f, y0, sy_up, sy_down, radius=12.0):
  """Basis fields of eyelid skin rotating about the eyeball's horizontal axis (+x).

  The skin is continuous over the eye (no eye opening), so the lids' window is smooth: its peak
  at `_EYE[1] + y0` moves most and the motion fades over sy_up / sy_down mm above / below.
  """
  dy = f.y - (_EYE[1] + y0)
  sy = np.where(dy >= 0.0, sy_up, sy_down)
  w = _pair(f.x, 0.0, _EYE[0], 0.0, 11.0, 1.0) * np.exp(-0.5 * (dy / sy) ** 2)
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
  w = _pair(f.x, f.y, 40.0, -35.0, 15.0, 14.0)
  lips = _lips_window(f)
  return (w[:, None] * 7.0 * f.normal + lips[:, None] * _vec(0.0, 0.0, 2.0))[None]


def _sneer(f):
  ala = _pair(f.x, f.y, 13.0, -17.0, 7.0, 9.0)
  lip = _pair(f.x, f.y, 12.0, _MOUTH_Y + 5.0, 8.0, 5.0) * np.clip(f.side, 0.0, 1.0)
  return ((ala[:, None] * _vec(0.5 * f.lateral, 5.0, -1.0))
          + lip[:, None] * _vec(0.0, 3.0, 0.5))[None]


def _lip_press(f):
  w = _lips_window(f)[:, None]
  return (w * _vec(0.0, -0.35 * (f.y - _MOUTH_Y), -3.0))[None]


def _mouth_stretch(f):
  w = _corners(f, 12.0, 12.0) + 0.4 * _pair(f.x, f.y, 35.0, -65.0, 16.0, 14.0)
  return (w[:, None] * _vec(5.0 * f.lateral, -3.0, -2.0))[None]


def _frown(f):
  w = _corners(f, 10.0, 10.0)
  return (w[:, None] * _vec(1.5 * f.lateral, -6.0, -1.0))[None]


def _chin_raise(f):
  chin = _gauss(f.x, f.y, 0.0, -74.0, 18.0, 11.0)
  lip = _lips_window(f) * np.clip(-f.side, 0.0, 1.0)
  return (chin[:, None] * _vec(0.0, 4.0, 3.0) + lip[:, None] * _vec(0.0, 1.5, 2.5))[None]


def _squint(f):
  cheek = _pair(f.x, f.y, 38.0, -5.0, 15.0, 10.0)
  return (cheek[:, None] * _vec(0.0, 2.5, 1.0))[None]


# Held-out (performance-only) generators: expressions the learning set lacks.


def _lip_roll(f):
  w = _lips_window(f)
  rel = (f.y - _MOUTH_Y) / 6.0
  return ((w[:, None] * _vec(0.0, -0.5 * (f.y - _MOUTH_Y), -3.0 * rel ** 2 - 1.0)))[None]


def _nose_wrinkle(f):
  side = _pair(f.x, f.y, 9.0, 6.0, 6.0, 8.0)
  dorsum = _gauss(f.x, f.y, 0.0, 10.0, 6.0, 8.0)
  return (side[:, None] * _vec(-1.5 * f.lateral, 3.0, 0.5)
          + dorsum[:, None] * _vec(0.0, -1.5, 1.0))[None]


def _jaw_clench(f):
  w = _pair(f.x, f.y, 68.0, -40.0, 12.0, 14.0)
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


# -------------------------------------------------------------------------------------------
# The actor.


def make_synthetic_actor(resolution: int = 64, seed: int = 0, name: str = 'synthetic') -> Actor:
  """The procedural actor: neutral + 19 expressions with dense ground-truth anatomy.

  Args:
    resolution: skin grid vertices per side: 64 gives ~4.3k skin vertices, 200 ~40k.
    seed: the identity's seed (proportions, feature and tissue amplitudes).
    name: the actor's name.
  Returns:
    A validated Actor (source 'synthetic') with `ground_truth` set, `region` all vertices and
    `trusted` all but the lips, the nose below the nasal bones and the eyelids. Its symmetry map
    is the exact mirror map of the grid (mouth-slit copies paired with their own side).
  """
  identity = make_identity(seed)
  layout = skin_layout(resolution)
  bone_point, bone_normal = surface_points(functools.partial(face_bone_radius, identity),
                                           layout.u, layout.v)
  thickness = thickness_field(identity, layout.u, layout.v)
  neutral = bone_point + thickness[:, None] * bone_normal
  split = split_elevation(layout.u)
  bone_id = np.where((layout.v < split - 1e-12) | layout.lower_lip, 1, 0).astype(np.int32)
  skinning = skinning_field(layout.u, layout.v, layout.lower_lip)

  step_deg = float(np.clip(96.0 / resolution, 1.0, 1.5))
  skull = sphere_mesh(functools.partial(cranium_radius, identity), step_deg)
  mandible, condyles = _mandible(identity, step_deg)
  pivot = condyles.mean(axis=0) + np.asarray(identity.pivot_offset, np.float64)

  rotations = np.stack([jaw_rotation(r.jaw[0], r.jaw[1]) for r in LEARNING_SHAPES])
  translations = np.array([r.jaw[2] for r in LEARNING_SHAPES], np.float64)
  ground_truth = GroundTruth(
      bone_point=bone_point.astype(np.float32), bone_normal=bone_normal.astype(np.float32),
      thickness=thickness.astype(np.float32), skinning=skinning.astype(np.float32),
      jaw_rotation=rotations.astype(np.float32), jaw_translation=translations.astype(np.float32),
      bone_id=bone_id)
  frame = face_frame(ground_truth)
  shapes = []
  for recipe, rotation, translation in zip(LEARNING_SHAPES, rotations, translations):
    shape = skin_points(neutral, skinning, rotation, translation, pivot)
    for expression, intensity in recipe.expressions:
      shape = shape + EXPRESSIONS[expression].delta(frame, intensity)
    shapes.append(shape)

  actor = make_actor(
      name=name, shapes=np.stack(shapes), shape_names=SHAPE_NAMES, faces=layout.faces,
      skull=skull, mandible=mandible, pivot=pivot, trusted=trusted_mask(frame),
      region=np.ones(neutral.shape[0], bool), ground_truth=ground_truth, source='synthetic')
  return dataclasses.replace(actor, symmetry=layout.mirror_index())


def trusted_mask(frame: FaceFrame) -> np.ndarray:
  """(V,) bool: False on the lips, the nose below the nasal bones and the eyelids."""
  x, y = frame.x, frame.y
  lips = (np.abs(x) < _CORNER_X + 6.0) & (np.abs(y - _MOUTH_Y) < 12.0)
  nose = (np.abs(x) < 20.0) & (y < 2.0) & (y > _MOUTH_Y + 8.0)
  eyes = ((np.abs(x) - _EYE[0]) / 15.0) ** 2 + ((y - _EYE[1]) / 11.0) ** 2 < 1.0
  return ~(lips | nose | eyes)


# -------------------------------------------------------------------------------------------
# The held-out performance.


@dataclasses.dataclass(frozen=True)
class Performance:
  """A held-out sequence with ground truth.

  Attributes:
    frames: (T, V, 3) float32 mm skin shapes.
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


def perform(actor: Actor, weights: np.ndarray, control_names=None) -> Performance:
  """Plays a recipe of controls on a synthetic actor (any identity of the same construction).

  The jaw rotates by the recipe's angles about the actor's own pivot, with a condylar slide that
  grows non-linearly with the opening and a lateral shift with the yaw; the expressions are the
  generators of `EXPRESSIONS` on the actor's own face frame. The same recipe on two actors is
  the ground truth of retargeting one actor's performance to the other.

  Args:
    actor: a synthetic actor (needs its ground truth).
    weights: (T, C) control values, as `performance_controls` returns (or a Performance's).
    control_names: C names; default the names of `performance_controls`.
  Returns:
    Performance with frames (T, V, 3) float32 mm.
  """
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
  gt = actor.ground_truth
  frame = face_frame(gt)
  neutral = np.asarray(actor.neutral, np.float64)
  open_deg, yaw_deg, forward_mm = weights[:, 0], weights[:, 1], weights[:, 2]
  rotation = np.stack([jaw_rotation(o, y) for o, y in zip(open_deg, yaw_deg)])
  translation = np.stack([0.3 * yaw_deg,                          # Lateral shift with yaw.
                          -0.002 * open_deg ** 2,                 # Condyle slides down...
                          forward_mm + 0.006 * open_deg ** 2], -1)  # ... and forward.
  frames = skin_points(neutral, gt.skinning, rotation, translation, actor.pivot)
  left = left_window(frame)
  windows = {'left': left, 'right': 1.0 - left, 'both': None}
  for j, (_, expression, side, _, _) in enumerate(PERFORMANCE_CONTROLS):
    frames += EXPRESSIONS[expression].delta(frame, weights[:, 3 + j], windows[side])
  return Performance(frames=frames.astype(np.float32),
                     jaw_rotation=rotation.astype(np.float32),
                     jaw_translation=translation.astype(np.float32),
                     weights=weights.astype(np.float32), control_names=names)


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
