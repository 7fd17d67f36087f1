"""Rays cast on triangle meshes: the first surface each ray meets.

Ray casting uses trimesh (embree through `embreex` when installed, else trimesh's pure-Python
path, which needs `rtree` and is orders of magnitude slower) and runs in chunks to bound memory.
Used by the sparse constraints (`constraints`) and the ray depths of the bone fit (`depths`).
Millimetres throughout.
"""

from __future__ import annotations

import numpy as np
import trimesh


def as_trimesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
  """A trimesh of (N, 3) mm vertices and (F, 3) faces as given (no merging or reordering)."""
  return trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                         process=False)


def first_hits(mesh: trimesh.Trimesh, origins: np.ndarray, directions: np.ndarray,
               chunk: int = 65536) -> tuple:
  """The first triangle each ray meets.

  Args:
    mesh: the triangles to hit.
    origins: (R, 3) mm ray origins; directions: (R, 3) unit ray directions.
    chunk: rays per ray-casting call.
  Returns:
    hit (R,) bool, triangle (R,) int64 (-1 where no hit), location (R, 3) mm (0 where no hit).
  """
  num = origins.shape[0]
  hit = np.zeros(num, bool)
  triangle = np.full(num, -1, np.int64)
  location = np.zeros((num, 3))
  for start in range(0, num, chunk):
    stop = min(start + chunk, num)
    tri, ray, loc = mesh.ray.intersects_id(origins[start:stop], directions[start:stop],
                                           multiple_hits=False, return_locations=True)
    if len(ray) == 0:
      continue
    ray = np.asarray(ray) + start
    # Keep the nearest hit per ray (backends may return more than one).
    distance = np.einsum('ij,ij->i', loc - origins[ray], directions[ray])
    order = np.lexsort((distance, ray))
    ray, tri, loc = ray[order], np.asarray(tri)[order], np.asarray(loc)[order]
    first = np.ones(len(ray), bool)
    first[1:] = ray[1:] != ray[:-1]
    hit[ray[first]] = True
    triangle[ray[first]] = tri[first]
    location[ray[first]] = loc[first]
  return hit, triangle, location


def first_hit_distances(mesh: trimesh.Trimesh, origins: np.ndarray, directions: np.ndarray,
                        chunk: int = 65536) -> tuple:
  """How far each ray travels to its first hit, and how the hit triangle faces it.

  Args:
    mesh: the triangles to hit; origins: (R, 3) mm; directions: (R, 3) unit.
    chunk: rays per ray-casting call.
  Returns:
    hit (R,) bool, distance (R,) mm along the ray (inf where no hit), facing (R,) =
    dot(triangle normal, ray direction): < 0 where the ray enters the mesh's inside there.
  """
  hit, triangle, location = first_hits(mesh, origins, directions, chunk)
  distance = np.full(len(origins), np.inf)
  facing = np.zeros(len(origins))
  distance[hit] = np.einsum('ij,ij->i', location[hit] - origins[hit], directions[hit])
  facing[hit] = np.einsum('ij,ij->i', mesh.face_normals[triangle[hit]], directions[hit])
  return hit, distance, facing
