"""How good a learned anatomy looks where no constraint is: figures that need no ground truth.

Sparse constraints pin the anatomy at a few vertices only; between them the fields are free. These
figures judge the whole anatomy by properties a real one has: left-right symmetry (of the
thickness and of the bone points across the actor's mirror plane), a bone surface that does not
fold over (no flipped triangles), a smooth tissue thickness (small differences across mesh
edges), and, for actors cut from ICT-FaceKit, tissue depths close to the published ones at the
Rhine landmarks (`aim_jax.anatomy.ict_bones.RHINE`). Every figure is in mm unless named
otherwise, measured over the actor's `region`; `anatomy_quality` computes them all, for the
learned fields and (where known) for the ground truth, so one can be read against the other.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from aim_jax import rigid_np
from aim_jax.anatomy import depths as depths_lib
from aim_jax.anatomy.ict_bones import RHINE
from aim_jax.data.actor import Actor
from aim_jax.eval import stats


def mirror_vertices(symmetry: np.ndarray, region: Optional[np.ndarray] = None) -> np.ndarray:
  """The vertices whose asymmetry is measured: a partner, and both in the region when given.

  Args:
    symmetry: (V,) int mirror partner of each vertex, -1 where none (a vertex on the mirror plane
      is its own partner).
    region: (V,) bool, the vertices measured (default all).
  Returns:
    (M,) int indices of the measured vertices.
  """
  symmetry = np.asarray(symmetry)
  keep = symmetry >= 0
  if region is not None:
    region = np.asarray(region, bool)
    keep &= region & region[np.maximum(symmetry, 0)]
  return np.flatnonzero(keep)


def scalar_asymmetry_map(values: np.ndarray, symmetry: np.ndarray,
                         region: Optional[np.ndarray] = None) -> np.ndarray:
  """(V,) |f(i) - f(partner(i))| at `mirror_vertices`, 0 elsewhere (the field's unit)."""
  values = np.asarray(values, np.float64)
  index = mirror_vertices(symmetry, region)
  out = np.zeros(len(values))
  out[index] = np.abs(values[index] - values[np.asarray(symmetry)[index]])
  return out


def scalar_asymmetry(values: np.ndarray, symmetry: np.ndarray,
                     region: Optional[np.ndarray] = None) -> Dict[str, float]:
  """Left-right asymmetry of a scalar field: |f(i) - f(partner(i))| over `mirror_vertices`.

  Args:
    values: (V,) the field (e.g. thickness, mm).
    symmetry: (V,) int mirror partners, -1 none.
    region: (V,) bool, the vertices measured (default all).
  Returns:
    `eval.stats` of the differences ('mean', 'median', 'p95' in the field's unit, 'count').
  """
  index = mirror_vertices(symmetry, region)
  return stats(scalar_asymmetry_map(values, symmetry, region)[index])


def point_asymmetry(points: np.ndarray, symmetry: np.ndarray, plane: np.ndarray,
                    region: Optional[np.ndarray] = None) -> Dict[str, float]:
  """Left-right asymmetry of per-vertex points: |p(i) - mirror(p(partner(i)))| (mm).

  A vertex on the mirror plane is its own partner, so its point counts twice its distance from
  the plane.

  Args:
    points: (V, 3) mm, e.g. the bone point under each skin vertex.
    symmetry: (V,) int mirror partners, -1 none.
    plane: (4,) the mirror plane (unit normal n, offset o), n . x = o.
    region: (V,) bool, the vertices measured (default all).
  Returns:
    `eval.stats` of the distances (mm).
  """
  points = np.asarray(points, np.float64)
  index = mirror_vertices(symmetry, region)
  mirrored = rigid_np.reflect(points[np.asarray(symmetry)[index]], np.asarray(plane, np.float64))
  return stats(np.linalg.norm(points[index] - mirrored, axis=-1))


def triangle_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """(F, 3) area-weighted (unnormalised) normals of the (F, 3) triangles over (V, 3) vertices."""
  v = np.asarray(vertices, np.float64)[np.asarray(faces)]
  return np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])


def flipped_triangles(bone: np.ndarray, skin: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Which triangles of the bone surface are flipped against the same triangles of the skin.

  The bone surface is the bone points joined by the skin's triangles; a triangle is flipped when
  its normal points against the skin triangle's (negative dot product). Collapsed triangles (zero
  area) are not counted as flipped.

  Args:
    bone: (V, 3) mm bone point under each skin vertex.
    skin: (V, 3) mm skin vertices (the neutral).
    faces: (F, 3) int triangles.
  Returns:
    (F,) bool.
  """
  return np.einsum('fi,fi->f', triangle_normals(bone, faces), triangle_normals(skin, faces)) < 0


def region_faces(faces: np.ndarray, region: Optional[np.ndarray] = None) -> np.ndarray:
  """The (F', 3) triangles whose three vertices lie in the (V,) bool region (default all)."""
  faces = np.asarray(faces)
  return faces if region is None else faces[np.asarray(region, bool)[faces].all(axis=1)]


def mesh_edges(faces: np.ndarray) -> np.ndarray:
  """(E, 2) int unique undirected edges (lower index first) of (F, 3) triangles."""
  faces = np.asarray(faces)
  edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
  return np.unique(np.sort(edges, axis=1), axis=0)


def roughness(values: np.ndarray, faces: np.ndarray,
              region: Optional[np.ndarray] = None) -> float:
  """Mean absolute difference of a scalar field across mesh edges (the field's unit, e.g. mm).

  Args:
    values: (V,) the field, e.g. thickness in mm.
    faces: (F, 3) int triangles.
    region: (V,) bool; only edges of triangles wholly inside count (default all).
  Returns:
    The mean |f(a) - f(b)| over the unique edges (NaN when none).
  """
  values = np.asarray(values, np.float64)
  edges = mesh_edges(region_faces(faces, region))
  if len(edges) == 0:
    return float('nan')
  return float(np.abs(values[edges[:, 0]] - values[edges[:, 1]]).mean())


def rhine_depths(thickness: np.ndarray, source_vertex_ids: np.ndarray,
                 landmarks: Mapping[str, Tuple[int, float]] = RHINE) -> Optional[Dict]:
  """Tissue depth at the Rhine landmarks present in an actor against the published depths.

  Args:
    thickness: (V,) mm soft-tissue thickness at each vertex.
    source_vertex_ids: (V,) int each vertex's id in the full ICT head.
    landmarks: name -> (ICT vertex id, published depth mm); default `ict_bones.RHINE`.
  Returns:
    None when no landmark is among the actor's vertices, else {'per_landmark': name ->
    {'depth_mm', 'published_mm', 'error_mm' (depth - published)}, 'mean_abs_error_mm',
    'count'}.
  """
  row_of = {int(source): row for row, source in enumerate(np.asarray(source_vertex_ids))}
  per_landmark = {}
  for name, (vertex_id, published) in landmarks.items():
    row = row_of.get(int(vertex_id))
    if row is None:
      continue
    depth = float(thickness[row])
    per_landmark[name] = {'depth_mm': depth, 'published_mm': float(published),
                          'error_mm': depth - float(published)}
  if not per_landmark:
    return None
  errors = [abs(v['error_mm']) for v in per_landmark.values()]
  return {'per_landmark': per_landmark, 'mean_abs_error_mm': float(np.mean(errors)),
          'count': len(per_landmark)}


def field_quality(bone: np.ndarray, thickness: np.ndarray, actor: Actor) -> Dict:
  """The figures of one anatomy (learned or ground truth) over the actor's region.

  Args:
    bone: (V, 3) mm bone point under each vertex of the neutral.
    thickness: (V,) mm soft-tissue thickness.
    actor: the actor (neutral, faces, symmetry, mirror plane, region, source vertex ids).
  Returns:
    'thickness_asymmetry_mm', 'bone_asymmetry_mm' (`eval.stats`), 'flipped_triangles_percent'
    (of the region's triangles), 'flipped_triangles' (count), 'thickness_roughness_mm', and
    'rhine_depth' (`rhine_depths`) for actors with source vertex ids holding a Rhine landmark.
  """
  faces = region_faces(actor.faces, actor.region)
  flipped = flipped_triangles(bone, actor.neutral, faces)
  figures = {
      'thickness_asymmetry_mm': scalar_asymmetry(thickness, actor.symmetry, actor.region),
      'bone_asymmetry_mm': point_asymmetry(bone, actor.symmetry, actor.mirror_plane,
                                           actor.region),
      'flipped_triangles_percent': float(100.0 * flipped.mean()) if len(faces) else float('nan'),
      'flipped_triangles': int(flipped.sum()),
      'thickness_roughness_mm': roughness(thickness, faces),
  }
  if actor.source_vertex_ids is not None:
    rhine = rhine_depths(thickness, actor.source_vertex_ids)
    if rhine is not None:
      figures['rhine_depth'] = rhine
  return figures


def anatomy_quality(fields: Mapping[str, np.ndarray], actor: Actor) -> Dict:
  """Anatomy-quality figures of a learned model, and of the actor's ground truth when known.

  Args:
    fields: as `aim.evaluate_chunked` returns at the neutral's vertices; uses 'bone' (V, 3) mm
      and 'thickness' (V,) mm.
    actor: the actor the model was learned on.
  Returns:
    `field_quality` of the learned fields; 'bone_meshes': the same figures of the actor's bone
    meshes by closest point (`depths.closest_bone_fields`; for ICT actors the fitted template
    bones); with ground truth also 'ground_truth' (the same figures of the true anatomy) and
    'thickness_roughness_vs_truth' (learned roughness / true roughness; 1 = as smooth as the
    truth).
  """
  figures = field_quality(np.asarray(fields['bone']), np.asarray(fields['thickness']), actor)
  figures['bone_meshes'] = field_quality(*depths_lib.closest_bone_fields(actor), actor)
  gt = actor.ground_truth
  if gt is not None:
    truth = field_quality(gt.bone_point, gt.thickness, actor)
    figures['ground_truth'] = truth
    true_roughness = truth['thickness_roughness_mm']
    figures['thickness_roughness_vs_truth'] = (
        figures['thickness_roughness_mm'] / true_roughness if true_roughness > 0
        else float('nan'))
  return figures
