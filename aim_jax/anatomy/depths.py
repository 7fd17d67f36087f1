"""Soft-tissue depths between a skin and bone meshes, and how well bones sit under a skin.

Tissue depth at a skin point p (`closest_depths`, used by the bone fit and the report): the
distance to the closest point q on the bone surface, negative when p lies inside the bone (behind
q's interpolated outward vertex normal), i.e. the bone pokes out through the skin. This is what a
needle perpendicular to the bone measures; unlike a ray along the skin normal it does not miss
the bone through the template's holes or thin plates (supraorbital rim, nasal bones, lateral
orbit), which lose landmarks or reach a deeper structure. `skin_depths` (ray along the inward
skin normal to the first bone surface) is kept for renders and as a second check.
`bone_heights` measures the other way round, from the skin (whose normals are sound) to nearby
bone vertices. Millimetres throughout. numpy / scipy / trimesh only.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
import trimesh
from scipy import spatial

from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.anatomy import rays


@dataclasses.dataclass(frozen=True)
class DepthTargets:
  """Target soft-tissue depths at L skin landmarks.

  Attributes:
    names: L landmark names.
    points: (L, 3) mm skin points.
    normals: (L, 3) unit outward skin normals there.
    depths: (L,) mm target depths (the published values).
    weights: (L,) relative weight of each target in the warp.
  """
  names: tuple
  points: np.ndarray
  normals: np.ndarray
  depths: np.ndarray
  weights: np.ndarray


# ---------------------------------------------------------------------------------------------
# Depths along rays.


def skin_depths(bone: trimesh.Trimesh, points: np.ndarray, normals: np.ndarray,
                max_distance_mm: float = 60.0, max_outside_mm: float = 30.0,
                offset_mm: float = 1e-4) -> np.ndarray:
  """(L,) signed soft-tissue depth (mm) under skin points (module docstring's definition).

  Args:
    bone: outward-wound bone mesh(es), one trimesh.
    points: (L, 3) mm skin points; normals: (L, 3) unit outward skin normals.
    max_distance_mm, max_outside_mm: search ranges inward and outward.
    offset_mm: ray origins are moved this far back along each ray, to catch bone at the skin.
  Returns:
    depth (L,) mm: > 0 bone under the skin, < 0 the point is inside the bone, NaN no bone.
  """
  points = np.asarray(points, np.float64)
  normals = np.asarray(normals, np.float64)
  depth = np.full(len(points), np.nan)
  hit, distance, facing = rays.first_hit_distances(bone, points + offset_mm * normals, -normals)
  distance -= offset_mm
  inward = hit & (distance <= max_distance_mm)
  depth[inward] = distance[inward]
  # Inside a bone: going outward, the first surface is one where the ray leaves the bone.
  hit, distance, facing = rays.first_hit_distances(bone, points - offset_mm * normals, normals)
  distance -= offset_mm
  outside = hit & (facing > 0) & (distance <= max_outside_mm)
  depth[outside] = -distance[outside]
  return depth


def oriented_skin_normals(vertices: np.ndarray, faces: np.ndarray,
                          inside_point: np.ndarray) -> np.ndarray:
  """(V, 3) unit vertex normals of the skin, oriented away from `inside_point` on the whole."""
  return constraints_lib.skin_vertex_normals(np.asarray(vertices, np.float64), faces,
                                             np.asarray(inside_point, np.float64))


# ---------------------------------------------------------------------------------------------
# Closest points and signed depths.


class BoneSurface:
  """Closest-point queries on a triangle mesh (mm).

  The candidates for each query point are the triangles around its `k` nearest vertices
  (a KD-tree), which finds the closest triangle of any reasonably even mesh (edges of a few mm)
  much faster than trimesh's general query. Vertex normals are area-weighted; the mesh must be
  wound outward (`outward_faces`).
  """

  def __init__(self, vertices: np.ndarray, faces: np.ndarray,
               vertex_faces: Optional[np.ndarray] = None, k: int = 6):
    """Args: vertices (N, 3) mm; faces (F, 3); vertex_faces: (N, m) -1-padded incident faces
    (trimesh's `vertex_faces`; computed when None); k: nearest vertices per query."""
    self.vertices = np.asarray(vertices, np.float64)
    self.faces = np.asarray(faces, np.int64)
    mesh = rays.as_trimesh(self.vertices, self.faces)
    self.vertex_faces = (np.asarray(mesh.vertex_faces) if vertex_faces is None
                         else np.asarray(vertex_faces))
    self.vertex_normals = np.asarray(mesh.vertex_normals, np.float64)
    self.used = np.unique(self.faces)  # Vertices of no triangle are never closest.
    self.tree = spatial.cKDTree(self.vertices[self.used])
    self.k = int(min(k, len(self.used)))

  def closest(self, points: np.ndarray, chunk: int = 4096) -> tuple:
    """Closest surface points of (P, 3) mm points.

    Returns:
      closest (P, 3) mm, distance (P,) mm, face (P,), signed (P,) mm: the distance, negative
      where the point lies behind the surface (inside the bone).
    """
    points = np.asarray(points, np.float64)
    count = len(points)
    closest = np.zeros((count, 3))
    face = np.zeros(count, np.int64)
    for start in range(0, count, chunk):
      p = points[start:start + chunk]
      if not len(p):
        continue
      _, nearest = self.tree.query(p, self.k)
      nearest = self.used[np.asarray(nearest).reshape(len(p), -1)]
      candidates = self.vertex_faces[nearest].reshape(len(p), -1)
      rows, cols = np.nonzero(candidates >= 0)
      tri_ids = candidates[rows, cols]
      points_on = trimesh.triangles.closest_point(self.vertices[self.faces[tri_ids]], p[rows])
      d2 = np.sum((points_on - p[rows]) ** 2, axis=1)
      order = np.lexsort((d2, rows))
      first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
      closest[start + rows[first]] = points_on[first]
      face[start + rows[first]] = tri_ids[first]
    offset = points - closest
    distance = np.linalg.norm(offset, axis=1)
    corners = self.faces[face]
    barycentric = trimesh.triangles.points_to_barycentric(self.vertices[corners], closest)
    normal = np.einsum('pc,pcj->pj', np.clip(barycentric, 0.0, 1.0), self.vertex_normals[corners])
    sign = np.where(np.einsum('ij,ij->i', offset, normal) < 0.0, -1.0, 1.0)
    return closest, distance, face, sign * distance


def outward_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """(F, 3) faces, reversed when their winding gives a negative volume (inward normals)."""
  faces = np.asarray(faces, np.int64)
  return faces[:, ::-1].copy() if rays.as_trimesh(vertices, faces).volume < 0 else faces


def closest_depths(bone, points: np.ndarray, max_distance_mm: float = 60.0) -> np.ndarray:
  """(L,) signed tissue depth (mm) at skin points by the closest bone point (module docstring).

  Args:
    bone: a BoneSurface, or an outward-wound trimesh.
    points: (L, 3) mm skin points.
    max_distance_mm: farther bone counts as none (NaN).
  """
  if not isinstance(bone, BoneSurface):
    bone = BoneSurface(bone.vertices, bone.faces)
  _, distance, _, signed = bone.closest(points)
  return np.where(distance <= max_distance_mm, signed, np.nan)


def closest_bone_fields(actor) -> Tuple[np.ndarray, np.ndarray]:
  """The anatomy the actor's own bone meshes give by closest point (anatomy quality, the depth
  prior of learning).

  For ICT actors these are the fitted template bones: the dense tissue depth they imply is the
  smooth map the learned thickness should keep between the constraints (its asymmetry is the
  template fit's own, a floor for the learned one).

  Args:
    actor: an `Actor`; its neutral (V, 3) mm and its skull and mandible meshes in the neutral pose.
  Returns:
    bone (V, 3) mm: the closest point on the skull or the mandible to each neutral vertex;
    depth (V,) mm: the signed distance to it (negative where the vertex lies inside the bone).
  """
  best_point = best_depth = None
  for mesh in (actor.skull, actor.mandible):
    faces = outward_faces(mesh.vertices, mesh.faces)
    point, distance, _, signed = BoneSurface(mesh.vertices, faces).closest(
        actor.neutral)
    if best_point is None:
      best_point, best_depth, best_distance = point, signed, distance
    else:
      nearer = distance < best_distance
      best_point = np.where(nearer[:, None], point, best_point)
      best_depth = np.where(nearer, signed, best_depth)
      best_distance = np.minimum(distance, best_distance)
  return best_point, best_depth


# ---------------------------------------------------------------------------------------------
# Bone heights over the skin, and the report.


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
  """(..., 3) vectors scaled to unit length (zero vectors stay ~0)."""
  norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
  return vectors / np.maximum(norm, 1e-12)



def bone_heights(bone_vertices: np.ndarray, skin: BoneSurface, skin_normals: np.ndarray,
                 driver: np.ndarray, max_tangential_mm: float = 1.0,
                 window_mm: float = 10.0) -> tuple:
  """Heights of bone vertices over the skin, measured from the skin (whose normals are sound).

  For a bone vertex b near the skin, c is its closest skin point and n the skin normal there
  (interpolated); its height is h = (b - c) . n: > 0 the vertex is outside the skin (pokes
  out), -h its depth under the skin.

  Args:
    bone_vertices: (N, 3) mm.
    skin: BoneSurface of the skin (the sheet, any orientation); skin_normals: (V, 3) unit outward.
    driver: (V,) bool, skin vertices that count (a skin triangle counts if all its corners do).
    max_tangential_mm: bone vertices farther than this beside the skin (off its edge, e.g. the
      vault above the forehead's border or the teeth behind the mouth opening) get no height.
    window_mm: only bone vertices whose nearest skin vertex lies within this plus their height
      above its tangent plane are measured (a cheap pre-filter).
  Returns:
    index (M,) bone vertex ids that have a height, height (M,) mm, normal (M, 3) skin normals
    there, skin_vertex (M,) the nearest skin vertex to each closest skin point.
  """
  bone_vertices = np.asarray(bone_vertices, np.float64)
  distance, nearest = spatial.cKDTree(skin.vertices).query(bone_vertices)
  rough = np.einsum('ij,ij->i', bone_vertices - skin.vertices[nearest], skin_normals[nearest])
  index = np.flatnonzero((distance < window_mm) | (rough > -window_mm) & (distance < 4 * window_mm))
  closest, _, face, _ = skin.closest(bone_vertices[index])
  corners = skin.faces[face]
  barycentric = np.clip(trimesh.triangles.points_to_barycentric(skin.vertices[corners], closest),
                        0.0, 1.0)
  normal = unit_vectors(np.einsum('pc,pcj->pj', barycentric, skin_normals[corners]))
  offset = bone_vertices[index] - closest
  height = np.einsum('ij,ij->i', offset, normal)
  tangential = np.linalg.norm(offset - height[:, None] * normal, axis=1)
  keep = (tangential <= max_tangential_mm) & driver[corners].all(axis=1)
  skin_vertex = corners[np.arange(len(corners)), np.argmax(barycentric, axis=1)]
  return index[keep], height[keep], normal[keep], skin_vertex[keep]


def depth_report(bone: trimesh.Trimesh, skin_vertices: np.ndarray, skin_normals: np.ndarray,
                 check: np.ndarray, targets: Optional[DepthTargets], margin_mm: float,
                 max_distance_mm: float = 60.0, max_outside_mm: float = 15.0,
                 skin_faces: Optional[np.ndarray] = None) -> Dict:
  """How well bones sit under a skin.

  Landmark depths are closest-point depths (`closest_depths`), with the ray depths along the
  inward skin normal (`skin_depths`) next to them. A counted skin vertex has bone poking out
  where the ray test finds it inside a bone, or (given `skin_faces`) where it is the nearest
  skin vertex of a bone vertex above the skin (`bone_heights`, measured from the skin).

  Args:
    bone: outward-wound bone mesh(es) as one trimesh.
    skin_vertices: (V, 3) mm; skin_normals: (V, 3) outward; check: (V,) bool, the vertices
      counted; targets: landmark targets or None; margin_mm: the required depth.
    skin_faces: (T, 3) skin triangles (enables the test from the skin side).
  Returns:
    dict with
      landmarks: {name: {'depth_mm': closest-point depth (None if no bone), 'ray_depth_mm': along
        the inward normal (None if no hit), 'published_mm': target}};
      landmark_mean_abs_error_mm: over landmarks with bone within max_distance_mm;
      outside_fraction / outside_vertices: counted skin vertices where bone pokes out;
      within_margin_fraction: counted vertices with bone closer than margin_mm (closest-point
        distance, or a bone vertex less than margin_mm under them), outside included;
      bone_vertices_outside / bone_vertices_within_margin: bone vertices above the counted skin
        (height > 0) / less than margin_mm under it (with skin_faces);
      no_bone_fraction: fraction with no bone within max_distance_mm;
      min_depth_mm: the smallest closest-point depth over the counted vertices.
  """
  surface = BoneSurface(bone.vertices, bone.faces)
  report = {}
  if targets is not None:
    depth = closest_depths(surface, targets.points, max_distance_mm)
    ray = skin_depths(bone, targets.points, targets.normals, max_distance_mm, max_outside_mm)
    report['landmarks'] = {
        name: {'depth_mm': None if not np.isfinite(d) else round(float(d), 2),
               'ray_depth_mm': None if not np.isfinite(r) else round(float(r), 2),
               'published_mm': float(t)}
        for name, d, r, t in zip(targets.names, depth, ray, targets.depths)}
    ok = np.isfinite(depth)
    report['landmark_mean_abs_error_mm'] = (
        float(np.abs(depth[ok] - targets.depths[ok]).mean()) if ok.any() else None)
  check = np.asarray(check, bool)
  index = np.flatnonzero(check)
  points = np.asarray(skin_vertices, np.float64)[index]
  _, distance, _, signed = surface.closest(points)
  ok = distance <= max_distance_mm
  ray = skin_depths(bone, points, np.asarray(skin_normals)[index], max_distance_mm,
                    max_outside_mm)
  outside = np.isfinite(ray) & (ray < 0)
  within = ok & (distance < margin_mm) | outside
  if skin_faces is not None:
    skin = BoneSurface(skin_vertices, skin_faces)
    _, height, _, nearest = bone_heights(bone.vertices, skin, np.asarray(skin_normals, np.float64),
                                         check)
    poked = np.zeros(len(check), bool)
    poked[nearest[height > 0]] = True
    close = np.zeros(len(check), bool)
    close[nearest[height > -margin_mm]] = True
    outside |= poked[index]
    within |= close[index]
    report.update(bone_vertices_outside=int(np.sum(height > 0)),
                  bone_vertices_within_margin=int(np.sum(height > -margin_mm)))
  count = max(1, index.size)
  report.update(
      checked_vertices=int(index.size),
      outside_fraction=float(np.sum(outside) / count),
      outside_vertices=int(np.sum(outside)),
      within_margin_fraction=float(np.sum(within) / count),
      no_bone_fraction=float(np.sum(~ok) / count),
      min_depth_mm=float(signed[ok].min()) if ok.any() else None,
      margin_mm=float(margin_mm))
  return report
