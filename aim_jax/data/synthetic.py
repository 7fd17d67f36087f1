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
  `s_i = (1 - k) s0 + k (R_i (s0 - p) + p + t_i) + e_i` (`rigid_np.skin_points`), with `e_i`
  from a small table of local expression generators (`EXPRESSIONS`) shared by the learning shapes
  (`LEARNING_SHAPES`) and the held-out performance (`synthetic_performance.make_performance`).

Identity variation with the seed changes the head's size and proportions and the amplitudes of
bone features and tissue depths (symmetrically); the chart positions of the features are fixed,
so the expression generators work on every identity. Seed 0 (the demo actor) varies by a few
percent; every other seed also gets a clearly different skull, tissue thickness and jaw pivot
(`make_identity`), so actor pairs exercise retargeting. `performance_controls` + `perform` play
one performance recipe on any actor: the ground truth of retargeting between two actors.

Modules: `synthetic_head` (identity, face bone, split, cranium, tissue thickness, skinning
weights), `synthetic_meshes` (the cranium, mandible and skin meshes), `synthetic_expressions`
(jaw rotations, expression generators, learning shapes), `synthetic_performance` (the held-out
performance); this module builds the actor from them.

Simplifications: the skin is one sheet with no eye or nostril openings (blinks close the lids
part way, compressing the skin over the eye); the nose's cartilage is modelled as a forward
ridge of the face bone plus soft tissue; the mandible has no coronoid notch and its condyles
are the slab's corners; the region between cheekbone and jaw is bone (the mandible's outer plate
continues the maxilla's), where a real skull has the mouth cavity.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from aim_jax import rigid_np
from aim_jax.data.actor import Actor, GroundTruth, make_actor
from aim_jax.data.synthetic_expressions import (
  EXPRESSIONS,
  LEARNING_SHAPES,
  SHAPE_NAMES,
  FaceFrame,
  face_frame,
  jaw_rotation,
)
from aim_jax.data.synthetic_head import (
  CORNER_X,
  EYE,
  MOUTH_Y,
  cranium_radius,
  face_bone_radius,
  make_identity,
  skinning_field,
  split_elevation,
  surface_points,
  thickness_field,
)
from aim_jax.data.synthetic_meshes import mandible_mesh, skin_layout, sphere_mesh


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
  mandible, condyles = mandible_mesh(identity, step_deg)
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
    shape = rigid_np.skin_points(neutral, skinning, rotation, translation, pivot)
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
  lips = (np.abs(x) < CORNER_X + 6.0) & (np.abs(y - MOUTH_Y) < 12.0)
  nose = (np.abs(x) < 20.0) & (y < 2.0) & (y > MOUTH_Y + 8.0)
  eyes = ((np.abs(x) - EYE[0]) / 15.0) ** 2 + ((y - EYE[1]) / 11.0) ** 2 < 1.0
  return ~(lips | nose | eyes)
