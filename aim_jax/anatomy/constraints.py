"""Sparse anatomical constraints (supplementary A.1, DESIGN.md section 3).

For each trusted skin vertex: cast a ray from the skin along the inverse skin normal; keep the
first bone hit only if the bone there faces the same way as the skin (dot(bone normal, skin
normal) > `min_facing`) and lies within `max_depth_mm`. From that bone point cast a second ray
along the bone normal until it meets the skin again, possibly at another point `q`. Store, for
`q`: the bone point b*, the thickness d* = |q - b*| and the bone normal n*, and which bone was
hit. By construction q = b* + d* n*.

Constraint points are surface points (a triangle and barycentric coordinates on the neutral), not
necessarily vertices; the model is queried there directly.

Rays are cast by `aim_jax.anatomy.rays` (trimesh; embree through `embreex` when installed, else
trimesh's pure-Python path, which needs `rtree` and is orders of magnitude slower), in chunks to
bound memory.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import trimesh

from aim_jax.anatomy import rays
from aim_jax.data.actor import Actor, Mesh

CRANIUM, MANDIBLE = 0, 1


@dataclasses.dataclass(frozen=True)
class SparseConstraints:
  """M sparse constraints on the neutral surface.

  Attributes:
    points: (M, 3) mm skin points q on the neutral (the model's query points).
    face: (M,) int skin triangle containing q; barycentric: (M, 3) coordinates of q in it.
    bone_point: (M, 3) mm b*; thickness: (M,) mm d*; bone_normal: (M, 3) unit n*.
    bone_id: (M,) int 0 cranium, 1 mandible.
    vertex: (M,) int nearest skin vertex to q (the vertex each constraint counts for).
    num_vertices: V of the skin, for fractions.
  """
  points: np.ndarray
  face: np.ndarray
  barycentric: np.ndarray
  bone_point: np.ndarray
  thickness: np.ndarray
  bone_normal: np.ndarray
  bone_id: np.ndarray
  vertex: np.ndarray
  num_vertices: int

  @property
  def count(self) -> int:
    return int(self.points.shape[0])

  def vertex_mask(self) -> np.ndarray:
    """(V,) bool, vertices that carry at least one constraint."""
    mask = np.zeros(self.num_vertices, bool)
    mask[self.vertex] = True
    return mask

  @property
  def fraction(self) -> float:
    """Fraction of skin vertices that carry a constraint."""
    return float(self.vertex_mask().mean())

  def to_npz(self, path: str):
    np.savez(path, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

  @classmethod
  def from_npz(cls, path: str) -> 'SparseConstraints':
    with np.load(path) as data:
      return cls(**{f.name: (int(data[f.name]) if f.name == 'num_vertices' else data[f.name])
                    for f in dataclasses.fields(cls)})


def _outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
  """Flips a closed-ish mesh whose winding gives a negative volume (inward normals)."""
  if mesh.volume < 0:
    mesh = rays.as_trimesh(mesh.vertices, mesh.faces[:, ::-1])
  return mesh


def skin_vertex_normals(vertices: np.ndarray, faces: np.ndarray,
                        bone_centroid: np.ndarray) -> np.ndarray:
  """(V, 3) unit area-weighted vertex normals, oriented away from the bones on the whole."""
  normals = np.asarray(rays.as_trimesh(vertices, faces).vertex_normals, np.float64)
  if np.mean(np.sum(normals * (vertices - bone_centroid), axis=-1)) < 0:
    normals = -normals
  return normals


def _barycentric(mesh: trimesh.Trimesh, triangle: np.ndarray, points: np.ndarray) -> np.ndarray:
  return trimesh.triangles.points_to_barycentric(mesh.triangles[triangle], points)


def _interpolated_normals(mesh: trimesh.Trimesh, triangle: np.ndarray,
                          points: np.ndarray) -> np.ndarray:
  """Smooth (barycentric-interpolated vertex) normals at points inside triangles."""
  bary = _barycentric(mesh, triangle, points)
  corner = np.asarray(mesh.vertex_normals)[mesh.faces[triangle]]
  normal = np.einsum('mk,mkj->mj', bary, corner)
  return normal / np.linalg.norm(normal, axis=-1, keepdims=True)


def compute_constraints(actor: Actor, max_depth_mm: float = 40.0, min_facing: float = 0.0,
                        source_fraction: float = 1.0, seed: int = 0, offset_mm: float = 1e-3,
                        chunk: int = 65536) -> SparseConstraints:
  """Computes the sparse anatomical constraints of an actor's neutral (A.1).

  Args:
    actor: the actor (neutral, faces, skull, mandible, trusted mask).
    max_depth_mm: bone hits deeper than this under the skin, and thicknesses beyond it, are
      dropped.
    min_facing: the bone normal must satisfy dot(bone normal, skin normal) > min_facing.
    source_fraction: the fraction of trusted vertices (seeded random subset) that cast rays.
      A.1 reports constraints on 5-10 % of skin points; a dense, fully trusted bone fit gives
      far more, so this thins them to the paper's sparsity.
    seed: seed of that subset.
    offset_mm: ray origins are moved this far along the ray to avoid self hits.
    chunk: rays per ray-casting call.
  Returns:
    SparseConstraints (possibly with M = 0).
  """
  if not trimesh.ray.has_embree:
    logging.warning('embreex is not installed: ray casting uses the slow pure-Python path. '
                    'Install aim_jax[embree] for a ~1000x speed-up.')
  skin = rays.as_trimesh(actor.neutral, actor.faces)
  bones = [_outward(rays.as_trimesh(b.vertices, b.faces)) for b in (actor.skull, actor.mandible)]
  bone = trimesh.util.concatenate(bones)
  bone_of_triangle = np.concatenate([np.full(len(b.faces), i) for i, b in enumerate(bones)])
  centroid = np.concatenate([b.vertices for b in bones]).mean(axis=0)
  skin_normal = skin_vertex_normals(np.asarray(actor.neutral, np.float64), actor.faces, centroid)

  # Ray 1: from trusted skin vertices inward.
  source = np.flatnonzero(actor.trusted)
  if source_fraction < 1.0:
    count = max(1, int(round(source_fraction * source.size)))
    source = np.sort(np.random.default_rng(seed).choice(source, count, replace=False))
  origin = np.asarray(actor.neutral, np.float64)[source]
  direction = -skin_normal[source]
  hit, triangle, bone_hit = rays.first_hits(bone, origin + offset_mm * direction, direction, chunk)
  depth = np.linalg.norm(bone_hit - origin, axis=-1)
  keep = hit & (depth <= max_depth_mm)
  source, triangle, bone_hit = source[keep], triangle[keep], bone_hit[keep]
  bone_normal = _interpolated_normals(bone, triangle, bone_hit)
  facing = np.sum(bone_normal * skin_normal[source], axis=-1) > min_facing
  source, triangle, bone_hit, bone_normal = (source[facing], triangle[facing], bone_hit[facing],
                                             bone_normal[facing])
  bone_id = bone_of_triangle[triangle]

  # Ray 2: from the bone point along the bone normal back to the skin.
  hit2, skin_triangle, skin_hit = rays.first_hits(skin, bone_hit + offset_mm * bone_normal,
                                                  bone_normal, chunk)
  thickness = np.linalg.norm(skin_hit - bone_hit, axis=-1)
  keep = hit2 & (thickness <= max_depth_mm)
  source, bone_hit, bone_normal, bone_id = source[keep], bone_hit[keep], bone_normal[keep], (
      bone_id[keep])
  skin_triangle, skin_hit, thickness = skin_triangle[keep], skin_hit[keep], thickness[keep]
  barycentric = _barycentric(skin, skin_triangle, skin_hit)
  vertex = skin.faces[skin_triangle, np.argmax(barycentric, axis=-1)]
  del source  # The constraint belongs to the skin point the second ray reached.
  return SparseConstraints(
      points=skin_hit.astype(np.float32), face=skin_triangle.astype(np.int32),
      barycentric=barycentric.astype(np.float32), bone_point=bone_hit.astype(np.float32),
      thickness=thickness.astype(np.float32), bone_normal=bone_normal.astype(np.float32),
      bone_id=bone_id.astype(np.int32), vertex=vertex.astype(np.int32),
      num_vertices=actor.num_vertices)


def interpolate_at(values: np.ndarray, faces: np.ndarray, constraints: SparseConstraints):
  """Interpolates per-vertex values (V, ...) at the constraint points -> (M, ...)."""
  corners = values[faces[constraints.face]]  # (M, 3, ...)
  return np.einsum('mk,mk...->m...', constraints.barycentric, corners)


def check_against_ground_truth(actor: Actor, constraints: SparseConstraints) -> dict:
  """Errors of the constraints against a synthetic actor's ground truth, at the constraint points.

  Returns dict: count, fraction, bone_mm (mean), thickness_mm (mean), normal_deg (mean),
  bone_id_agreement (fraction of constraints whose bone matches the ground truth's).
  """
  gt = actor.ground_truth
  if gt is None:
    raise ValueError(f'{actor.name}: no ground truth to check constraints against')
  result = {'count': constraints.count, 'fraction': constraints.fraction}
  if constraints.count == 0:
    return result
  bone = interpolate_at(gt.bone_point, actor.faces, constraints)
  thickness = interpolate_at(gt.thickness, actor.faces, constraints)
  normal = interpolate_at(gt.bone_normal, actor.faces, constraints)
  normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
  cos = np.clip(np.sum(normal * constraints.bone_normal, axis=-1), -1, 1)
  result.update(
      bone_mm=float(np.linalg.norm(bone - constraints.bone_point, axis=-1).mean()),
      thickness_mm=float(np.abs(thickness - constraints.thickness).mean()),
      normal_deg=float(np.degrees(np.arccos(cos)).mean()),
      bone_id_agreement=float(np.mean(gt.bone_id[constraints.vertex] == constraints.bone_id)))
  return result


def bones_mesh(skull: Mesh, mandible: Mesh) -> trimesh.Trimesh:
  """The cranium and mandible as one outward-wound trimesh (for rendering and checks)."""
  return trimesh.util.concatenate([_outward(rays.as_trimesh(b.vertices, b.faces))
                                   for b in (skull, mandible)])
