"""Template bones fitted under an ICT-FaceKit identity (DESIGN.md section 2, ICT).

1. Similarity (`rigid_np.similarity_fit`) of the template's upper incisor tip, orbit centres and
   bony nasion onto the ICT head's upper incisor tip, eyeball centres and the skin nasion moved
   in by its published depth (7 mm).
2. The mandible (whose template pose is slightly open) turned rigidly about its condyles so its
   incisor tip meets the ICT lower incisor tip (the lower teeth place the mandible).
3. The smooth warp (`bone_fit.fit_warp`) toward the published depths (Rhine 1983, via Taylor
   2001; `paper/aim_method_notes.md`) at the skin landmarks `RHINE` (ICT vertex ids, picked once
   on the generic neutral by rules given next to each, valid for every identity since they share
   the topology), with both incisor tips anchored, keeping the bone `margin_mm` inside the skin.
4. The jaw pivot at the condyles (`folder.estimate_pivot`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import spatial

from aim_jax import rigid_np
from aim_jax.anatomy import bone_fit, rays, skull_template
from aim_jax.anatomy import depths as depths_lib
from aim_jax.data import folder as folder_lib
from aim_jax.data import ict
from aim_jax.data import symmetry as symmetry_lib
from aim_jax.data.actor import Mesh

# Published soft-tissue depths (mm) at skin landmarks: name -> (ICT vertex id on the midline or
# the subject's left (+x), depth). Picked on the generic neutral (narrow_face region): midline
# points by ray casting the profile (nasion = deepest point between the eyes and the brow,
# glabella = most forward point above it, supraglabella 15 mm higher, rhinion 58 % of the way
# from nasion to nose tip, mid-philtrum half-way from subnasale to the upper lip, prosthion /
# infradentale = Multi-PIE upper / lower lip landmarks 51 / 57, supramentale = deepest point of
# the labiomental fold, pogonion = most forward chin point, menton = under the chin 12 mm behind
# pogonion); bilateral points by rays at set offsets from the eye centre (frontal eminence 25 mm
# above glabella, supraorbital 15 mm above and suborbital 14 mm below the eye centre, inferior
# malar 8 mm lateral and 28 mm below it, lateral orbit 9 mm beyond the outer eye corner),
# from the side (zygomatic arch, supraglenoid, mid-masseter) or from the front beside the mouth
# (supra- and sub-M2, 12 mm beyond the mouth corner, 8 mm above and 20 mm below it), gonion
# between Multi-PIE jaw-line landmarks 12 and 13.
RHINE = {
    'supraglabella': (974, 4.5),
    'glabella': (1398, 4.5),
    'nasion': (1358, 7.0),
    'rhinion': (979, 2.5),
    'mid_philtrum': (1644, 10.0),
    'prosthion': (0, 11.0),
    'infradentale': (5518, 12.25),
    'supramentale': (7, 10.0),
    'pogonion': (968, 13.0),
    'menton': (965, 8.0),
    'frontal_eminence': (4217, 4.0),
    'supraorbital': (4121, 8.5),
    'suborbital': (3298, 6.25),
    'inferior_malar': (3150, 12.0),
    'lateral_orbit': (2291, 11.5),
    'zygomatic_arch': (3105, 7.0),
    'supraglenoid': (3090, 6.25),
    'gonion': (2470, 10.5),
    'supra_m2': (2747, 18.0),
    'mid_masseter': (2603, 17.5),
    'sub_m2': (3009, 17.0),
}


@dataclasses.dataclass(frozen=True)
class BoneFit:
  """Bones fitted under an actor's neutral.

  Attributes:
    cranium, mandible: fitted meshes (mm).
    pivot: (3,) mm jaw pivot (mid-point of the condyle tops).
    report: JSON-ready dict: depths at the landmarks next to the published ones, the fraction
      of skin vertices where bone pokes out, the similarity's scale, timings, warp history.
  """
  cranium: Mesh
  mandible: Mesh
  pivot: np.ndarray
  report: Dict


def sphere_center(points: np.ndarray) -> np.ndarray:
  """(3,) least-squares sphere centre of (N, 3) points."""
  points = np.asarray(points, np.float64)
  design = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
  solution, *_ = np.linalg.lstsq(design, (points ** 2).sum(axis=1), rcond=None)
  return solution[:3]


def mirrored_vertex(neutral: np.ndarray, vertex: int, candidates: np.ndarray) -> int:
  """The candidate vertex nearest to `vertex`'s mirror image across x = 0."""
  target = np.asarray(neutral[vertex], np.float64) * [-1.0, 1.0, 1.0]
  return int(candidates[np.argmin(np.linalg.norm(neutral[candidates] - target, axis=1))])


def landmark_vertices(model: ict.IctModel, vertex_ids: np.ndarray) -> Dict[str, tuple]:
  """name -> (local vertex index in `vertex_ids`, published depth), both sides of bilateral ones.

  Landmarks whose vertex is not in the region are left out.
  """
  local = {int(v): i for i, v in enumerate(vertex_ids)}
  out = {}
  for name, (vertex, depth) in RHINE.items():
    if abs(float(model.neutral[vertex, 0])) < 0.5:
      pairs = [(name, vertex)]
    else:
      pairs = [(name + '_left', vertex),
               (name + '_right', mirrored_vertex(model.neutral, vertex, vertex_ids))]
    for key, v in pairs:
      if v in local:
        out[key] = (local[v], depth)
  return out


def ict_correspondences(model: ict.IctModel, head: np.ndarray, skin_vertex_ids: np.ndarray,
                        skin_normals: np.ndarray) -> Dict[str, np.ndarray]:
  """Points of an ICT head matching the template's landmarks (mm).

  Args:
    head: (N, 3) mm identity neutral (whole head).
    skin_vertex_ids: (V,) the skin region's vertex ids; skin_normals: (V, 3) outward normals.
  """
  teeth_upper = head[ict.region_ids('teeth_upper')]
  teeth_lower = head[ict.region_ids('teeth_lower')]
  nasion_vertex, nasion_depth = RHINE['nasion']
  local = int(np.flatnonzero(skin_vertex_ids == nasion_vertex)[0])
  return {
      'upper_incisor': skull_template.front_midline_extreme(teeth_upper, highest=False),
      'lower_incisor': skull_template.front_midline_extreme(teeth_lower, highest=True),
      'orbit_left': sphere_center(head[ict.region_ids('eyeball_left')]),
      'orbit_right': sphere_center(head[ict.region_ids('eyeball_right')]),
      'nasion': head[nasion_vertex] - nasion_depth * skin_normals[local],
  }


# Multi-PIE landmark ids (0-based) of the inner lip contour and the eye contours: the skin there
# folds into the mouth or the eye opening, where the skin normal says nothing about the bone.
INNER_LIPS = tuple(range(60, 68))
EYES = tuple(range(36, 48))


def landmark_mask(model: ict.IctModel, head: np.ndarray, skin_vertex_ids: np.ndarray,
                  landmarks: Sequence[int], radius_mm: float) -> np.ndarray:
  """(V,) bool: skin vertices within `radius_mm` of any of the given Multi-PIE landmarks."""
  skin = np.asarray(head[skin_vertex_ids], np.float64)
  centers = np.asarray(head[model.landmarks[list(landmarks)]], np.float64)
  return spatial.cKDTree(centers).query(skin)[0] <= radius_mm


def check_mask(model: ict.IctModel, head: np.ndarray, skin_vertex_ids: np.ndarray,
               skin_normals: Optional[np.ndarray] = None, lip_radius_mm: float = 6.0,
               mucosa_radius_mm: float = 15.0, mucosa_max_forward: float = 0.2) -> np.ndarray:
  """(V,) bool: skin vertices that must have bone at least the margin under them: all but the
  lips' contact line and the lip mucosa facing the oral cavity.

  Left out: vertices within `lip_radius_mm` of the inner-lip landmarks, and (given the outward
  skin normals) those within `mucosa_radius_mm` of them whose normal's forward (+z) component is
  below `mucosa_max_forward`: there the skin rolls into the mouth and faces the oral cavity,
  where the teeth sit (the incisors legitimately lie above the lower lip's inner surface and
  right behind the upper lip's), so 'outside' that skin is inside the mouth, not through the
  face.
  """
  excluded = landmark_mask(model, head, skin_vertex_ids, INNER_LIPS, lip_radius_mm)
  if skin_normals is not None:
    excluded |= (landmark_mask(model, head, skin_vertex_ids, INNER_LIPS, mucosa_radius_mm)
                 & (np.asarray(skin_normals)[:, 2] < mucosa_max_forward))
  return ~excluded


def _transform_mesh(mesh: Mesh, fn) -> Mesh:
  return Mesh(fn(mesh.vertices), mesh.faces)


def fit_ict_bones(model: ict.IctModel, head: np.ndarray, skin_vertex_ids: np.ndarray,
                  skin_faces: np.ndarray, template: skull_template.Template,
                  settings: Optional[bone_fit.WarpSettings] = None,
                  landmark_weights: Optional[Dict[str, float]] = None) -> BoneFit:
  """Fits the template bones under an ICT identity's neutral skin (module docstring).

  Args:
    model: the ICT model; head: (N, 3) mm the identity's neutral head.
    skin_vertex_ids: (V,) the actor's skin vertices; skin_faces: (F, 3) their triangles.
    template: the template bones (`skull_template.load_template`).
    settings: warp settings (margin, smoothness, iterations ...).
    landmark_weights: optional per-landmark weights (by name, without _left / _right).
  Returns:
    BoneFit.
  """
  settings = bone_fit.WarpSettings() if settings is None else settings
  start = time.perf_counter()
  skin = np.asarray(head[skin_vertex_ids], np.float64)
  normals = depths_lib.oriented_skin_normals(skin, skin_faces,
                                             head[ict.region_ids('teeth')].mean(0))
  target = ict_correspondences(model, head, skin_vertex_ids, normals)
  marks = template.landmarks
  names = ('upper_incisor', 'orbit_left', 'orbit_right', 'nasion')
  s, rotation, translation = rigid_np.similarity_fit(np.stack([marks[n] for n in names]),
                                                     np.stack([target[n] for n in names]))

  def place(points):
    return rigid_np.apply_similarity(points, s, rotation, translation)

  placed = {name: place(point) for name, point in marks.items()}
  similarity_residual = {n: float(np.linalg.norm(placed[n] - target[n])) for n in names}
  # The mandible: turned about its condyles so its incisor tip meets the ICT one.
  condyles = np.stack([placed['condyle_left'], placed['condyle_right']])
  jaw_r, jaw_t = rigid_np.rigid_fit(np.concatenate([condyles, placed['lower_incisor'][None]]),
                                    np.concatenate([condyles, target['lower_incisor'][None]]),
                                    weights=np.array([1.0, 1.0, 2.0]))
  cranium = _transform_mesh(template.cranium, place)
  mandible = _transform_mesh(template.mandible, lambda v: place(v) @ jaw_r.T + jaw_t)
  lower_incisor = placed['lower_incisor'] @ jaw_r.T + jaw_t

  # The warp: the cranium flexible, the mandible stiff (its own wide RBF field, anchored at the
  # lower incisor and the condyles, so it is not bent).
  marks_local = landmark_vertices(model, skin_vertex_ids)
  weights = landmark_weights or {}
  targets = depths_lib.DepthTargets(
      names=tuple(marks_local),
      points=skin[[i for i, _ in marks_local.values()]],
      normals=normals[[i for i, _ in marks_local.values()]],
      depths=np.array([d for _, d in marks_local.values()]),
      weights=np.array([weights.get(n.replace('_left', '').replace('_right', ''), 1.0)
                        for n in marks_local]))
  cranium = Mesh(cranium.vertices, depths_lib.outward_faces(cranium.vertices, cranium.faces))
  mandible = Mesh(mandible.vertices, depths_lib.outward_faces(mandible.vertices, mandible.faces))
  bones = skull_template.join([cranium, mandible])
  count = len(cranium.vertices)
  parts = [bone_fit.WarpPart('cranium', np.arange(count)),
           bone_fit.WarpPart('mandible', np.arange(count, len(bones.vertices)), stiff=True)]
  jaw_condyles = condyles @ jaw_r.T + jaw_t
  anchor_points = [(cranium.vertices, 0, placed['upper_incisor'], target['upper_incisor']),
                   (mandible.vertices, count, lower_incisor, target['lower_incisor']),
                   (mandible.vertices, count, jaw_condyles[0], jaw_condyles[0]),
                   (mandible.vertices, count, jaw_condyles[1], jaw_condyles[1])]
  anchors = [offset + int(np.argmin(np.linalg.norm(v - p, axis=1)))
             for v, offset, p, _ in anchor_points]
  anchor_target = np.stack([t for *_, t in anchor_points])
  check = check_mask(model, head, skin_vertex_ids, normals)
  bone_mesh = rays.as_trimesh(bones.vertices, bones.faces)
  before = depths_lib.depth_report(bone_mesh, skin, normals, np.ones(len(skin), bool), targets,
                                   settings.margin_mm, settings.max_distance_mm,
                                   settings.max_outside_mm, skin_faces)
  warp_start = time.perf_counter()
  result = bone_fit.fit_warp(bones.vertices, bones.faces, skin, normals, check, targets,
                             anchors, anchor_target, settings, parts, skin_faces)
  warp_seconds = time.perf_counter() - warp_start
  cranium = Mesh(result.vertices[:count], cranium.faces)
  mandible = Mesh(result.vertices[count:], mandible.faces)
  plane = symmetry_lib.mirror_plane(skin)
  pivot = folder_lib.estimate_pivot(mandible.vertices, plane)
  after = depths_lib.depth_report(rays.as_trimesh(result.vertices, bones.faces), skin, normals,
                                  np.ones(len(skin), bool), targets, settings.margin_mm,
                                  settings.max_distance_mm, settings.max_outside_mm, skin_faces)
  after_checked = depths_lib.depth_report(
      rays.as_trimesh(result.vertices, bones.faces), skin, normals, check, None,
      settings.margin_mm, settings.max_distance_mm, settings.max_outside_mm, skin_faces)
  report = {
      'after_warp': after,
      'after_warp_checked': after_checked,
      'after_similarity': before,
      'similarity': {'scale': s, 'residual_mm': similarity_residual},
      'mandible_rotation_deg': float(np.degrees(np.arccos(np.clip((np.trace(jaw_r) - 1) / 2,
                                                                   -1, 1)))),
      'pivot_mm': [float(p) for p in pivot],
      'warp_history': result.history,
      'warp_accepted_rounds': result.best_round,
      'margin_push': result.push,
      'checked_in_fit': int(check.sum()),
      'settings': dataclasses.asdict(settings),
      'seconds': {'warp': warp_seconds, 'total': time.perf_counter() - start},
  }
  return BoneFit(cranium=cranium, mandible=mandible, pivot=pivot, report=report)
