"""The `Actor`: an actor's registered skin shapes, bones and masks, in millimetres.

An actor is what model learning consumes (DESIGN.md section 2). Every array is numpy; the
learning code converts what it needs to jax arrays. Construction validates everything and raises
`ActorError` with a one-line message that names the actor's source and the problem.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from aim_jax.data import symmetry as symmetry_lib


class ActorError(ValueError):
  """Bad actor data. The message is one line: '<source>: <problem>'."""


def file_error(file: str, problem: str) -> ActorError:
  """An ActorError '<file>: <problem>' on one line (whitespace in `problem` collapsed)."""
  return ActorError(f'{file}: {" ".join(str(problem).split())}')


@dataclasses.dataclass(frozen=True)
class Mesh:
  """A triangle mesh.

  Attributes:
    vertices: (V, 3) float, millimetres.
    faces: (F, 3) int triangle vertex indices.
  """
  vertices: np.ndarray
  faces: np.ndarray


@dataclasses.dataclass(frozen=True)
class GroundTruth:
  """Dense ground-truth anatomy of an actor (known only for synthetic actors).

  Attributes:
    bone_point: (V, 3) mm, the bone point under each skin vertex of the neutral.
    bone_normal: (V, 3) unit anatomy normal; neutral = bone_point + thickness * bone_normal.
    thickness: (V,) mm soft-tissue thickness.
    skinning: (V,) jaw skinning weight in [0, 1].
    jaw_rotation: (S, 3, 3) rotation of the mandible for each shape, about `pivot`.
    jaw_translation: (S, 3) mm translation of the mandible for each shape; a point p on the
      mandible moves to R (p - pivot) + pivot + t.
    bone_id: (V,) int, 0 = cranium, 1 = mandible: which bone each skin vertex lies over.
  """
  bone_point: np.ndarray
  bone_normal: np.ndarray
  thickness: np.ndarray
  skinning: np.ndarray
  jaw_rotation: np.ndarray
  jaw_translation: np.ndarray
  bone_id: np.ndarray


@dataclasses.dataclass(frozen=True)
class Actor:
  """An actor's learning data, in millimetres.

  Attributes:
    name: short identifier used in messages and file names.
    shapes: (S, V, 3) float32 registered skin shapes, rigid head motion removed; shapes[0] is
      the neutral.
    shape_names: S names; shape_names[0] is the neutral's.
    faces: (F, 3) int32 triangles shared by every shape.
    skull: the cranium (skull + maxilla) in the neutral pose.
    mandible: the mandible in the neutral pose.
    pivot: (3,) mm jaw pivot (mid-point of the condyles).
    symmetry: (V,) int32 mirror partner of each vertex, -1 where none.
    mirror_plane: (4,) plane (unit normal n, offset o) with n . x = o on the sagittal plane.
    trusted: (V,) bool, where the bone fit is trusted (A.1); default all.
    region: (V,) bool, the vertices errors are measured on (face region); default all.
    ground_truth: dense ground-truth anatomy where known (synthetic actors), else None.
    source: where the data came from (a folder path or 'synthetic'), for messages.
    shape_jaws: optional per-shape jaw transforms the user fitted (e.g. from tracked teeth):
      (rotation (S, 3, 3), translation (S, 3) mm) about `pivot`, a mandible point p moving to
      R (p - pivot) + pivot + t. Used only by the learning's optional jaw prior.
    source_vertex_ids: optional (V,) int, each vertex's index in the larger mesh the actor was
      cut from (e.g. ICT's full head), so frames in that topology can be cropped to the actor's.
  """
  name: str
  shapes: np.ndarray
  shape_names: tuple
  faces: np.ndarray
  skull: Mesh
  mandible: Mesh
  pivot: np.ndarray
  symmetry: np.ndarray
  mirror_plane: np.ndarray
  trusted: np.ndarray
  region: np.ndarray
  ground_truth: Optional[GroundTruth] = None
  source: str = ''
  shape_jaws: Optional[Tuple[np.ndarray, np.ndarray]] = None
  source_vertex_ids: Optional[np.ndarray] = None

  def __post_init__(self):
    validate_actor(self)

  @property
  def neutral(self) -> np.ndarray:
    """(V, 3) mm neutral shape."""
    return self.shapes[0]

  @property
  def num_shapes(self) -> int:
    return int(self.shapes.shape[0])

  @property
  def num_vertices(self) -> int:
    return int(self.shapes.shape[1])


def _fail(source: str, problem: str):
  raise ActorError(f'{source or "actor"}: {problem}')


def _check_finite(source, what, array):
  bad = ~np.isfinite(array)
  if bad.any():
    index = np.argwhere(bad)[0]
    _fail(source, f'{what} has {int(bad.sum())} non-finite values (NaN/inf), first at index '
          f'{tuple(int(i) for i in index)}')


def check_triangles(source: str, what: str, vertices: np.ndarray, faces: np.ndarray,
                    min_area_mm2: float = 1e-10):
  """Validates a triangle list against its vertices; raises ActorError on any problem."""
  if faces.ndim != 2 or faces.shape[1] != 3:
    _fail(source, f'{what} faces must be (F, 3) triangles, got shape {faces.shape}')
  if faces.shape[0] == 0:
    _fail(source, f'{what} has no faces')
  if faces.min() < 0 or faces.max() >= vertices.shape[0]:
    _fail(source, f'{what} faces index vertex {int(faces.max())} (or {int(faces.min())}) but '
          f'there are {vertices.shape[0]} vertices')
  tri = vertices[faces]
  area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=-1)
  degenerate = np.flatnonzero(area <= min_area_mm2)
  if degenerate.size:
    _fail(source, f'{what} has {degenerate.size} degenerate (zero-area) faces, first is face '
          f'{int(degenerate[0])}')


def validate_actor(actor: Actor,
                   min_extent_mm: float = 20.0,
                   max_extent_mm: float = 1000.0):
  """Raises ActorError naming the first problem found with `actor`.

  Checks: shapes are (S>=2, V, 3) with S names; everything finite; faces valid and non-degenerate;
  bones are meshes; masks and symmetry have V entries; units plausible (a face spans between
  `min_extent_mm` and `max_extent_mm`: metres or centimetres declared as millimetres fail here).
  """
  src = actor.source or actor.name
  shapes = actor.shapes
  if shapes.ndim != 3 or shapes.shape[2] != 3:
    _fail(src, f'shapes must be (S, V, 3), got shape {shapes.shape}')
  if shapes.shape[0] < 2:
    _fail(src, f'need a neutral and at least one expression, got {shapes.shape[0]} shape(s)')
  if len(actor.shape_names) != shapes.shape[0]:
    _fail(src, f'{len(actor.shape_names)} shape names for {shapes.shape[0]} shapes')
  num_vertices = shapes.shape[1]
  for i, name in enumerate(actor.shape_names):
    _check_finite(src, f'shape {i} ({name})', shapes[i])
  extent = float(np.max(np.ptp(shapes[0], axis=0)))
  if not min_extent_mm <= extent <= max_extent_mm:
    _fail(src, f'neutral spans {extent:.4g} units; expected a face of {min_extent_mm:g}-'
          f'{max_extent_mm:g} mm: are the units right (declare them in actor.json)?')
  check_triangles(src, 'skin', shapes[0], actor.faces)
  for bone_name, bone in (('skull', actor.skull), ('mandible', actor.mandible)):
    if bone.vertices.ndim != 2 or bone.vertices.shape[1] != 3:
      _fail(src, f'{bone_name} vertices must be (N, 3), got shape {bone.vertices.shape}')
    _check_finite(src, f'{bone_name} vertices', bone.vertices)
    check_triangles(src, bone_name, bone.vertices, bone.faces)
  pivot = np.asarray(actor.pivot)
  if pivot.shape != (3,):
    _fail(src, f'pivot must be (3,), got shape {pivot.shape}')
  _check_finite(src, 'pivot', pivot)
  for what, mask in (('symmetry', actor.symmetry), ('trusted', actor.trusted),
                     ('region', actor.region)):
    if mask.shape != (num_vertices,):
      _fail(src, f'{what} must have one entry per vertex ({num_vertices}), got shape {mask.shape}')
  if actor.symmetry.min() < -1 or actor.symmetry.max() >= num_vertices:
    _fail(src, 'symmetry indexes a vertex out of range')
  if actor.mirror_plane.shape != (4,):
    _fail(src, f'mirror_plane must be (4,), got shape {actor.mirror_plane.shape}')
  if not actor.region.any():
    _fail(src, 'region mask selects no vertex')
  gt = actor.ground_truth
  if gt is not None:
    for what in ('bone_point', 'bone_normal', 'thickness', 'skinning', 'bone_id'):
      value = getattr(gt, what)
      if value.shape[0] != num_vertices:
        _fail(src, f'ground truth {what} has {value.shape[0]} rows for {num_vertices} vertices')
      _check_finite(src, f'ground truth {what}', value)
    for what in ('jaw_rotation', 'jaw_translation'):
      if getattr(gt, what).shape[0] != shapes.shape[0]:
        _fail(src, f'ground truth {what} has {getattr(gt, what).shape[0]} rows for '
              f'{shapes.shape[0]} shapes')
  if actor.shape_jaws is not None:
    rotation, translation = (np.asarray(a) for a in actor.shape_jaws)
    if rotation.shape != (shapes.shape[0], 3, 3) or translation.shape != (shapes.shape[0], 3):
      _fail(src, f'shape_jaws must be ({shapes.shape[0]}, 3, 3) rotations and '
            f'({shapes.shape[0]}, 3) translations, got {rotation.shape} and {translation.shape}')
    _check_finite(src, 'jaw rotations', rotation)
    _check_finite(src, 'jaw translations', translation)
  if actor.source_vertex_ids is not None:
    ids = np.asarray(actor.source_vertex_ids)
    if (ids.shape != (shapes.shape[1],) or not np.issubdtype(ids.dtype, np.integer)
        or ids.min() < 0 or len(np.unique(ids)) != len(ids)):
      _fail(src, f'source_vertex_ids must be {shapes.shape[1]} distinct non-negative integers, '
            f'got shape {ids.shape} ({ids.dtype})')


def make_actor(name: str,
               shapes: np.ndarray,
               shape_names: Sequence[str],
               faces: np.ndarray,
               skull: Mesh,
               mandible: Mesh,
               pivot: np.ndarray,
               trusted: Optional[np.ndarray] = None,
               region: Optional[np.ndarray] = None,
               ground_truth: Optional[GroundTruth] = None,
               source: str = '',
               symmetry_tolerance_mm: float = 1.0,
               shape_jaws: Optional[Tuple[np.ndarray, np.ndarray]] = None,
               source_vertex_ids: Optional[np.ndarray] = None) -> Actor:
  """Builds a validated Actor, computing the symmetry map and mirror plane from the neutral.

  Args:
    shapes: (S, V, 3) mm, shapes[0] the neutral.
    trusted, region: (V,) bool masks; default all True.
    symmetry_tolerance_mm: a vertex's mirror image must land within this distance of a vertex
      for the two to be partners.
  """
  shapes = np.asarray(shapes, np.float32)
  faces = np.asarray(faces, np.int32)
  src = source or name
  if shapes.ndim != 3 or shapes.shape[-1] != 3:
    _fail(src, f'shapes must be (S, V, 3), got shape {shapes.shape}')
  num_vertices = shapes.shape[1]
  trusted = np.ones(num_vertices, bool) if trusted is None else np.asarray(trusted, bool)
  region = np.ones(num_vertices, bool) if region is None else np.asarray(region, bool)
  if np.isfinite(shapes[0]).all():
    plane = symmetry_lib.mirror_plane(shapes[0])
    partners = symmetry_lib.symmetry_map(shapes[0], plane, symmetry_tolerance_mm)
  else:  # validate_actor reports the NaNs with their location.
    plane = np.array([1.0, 0.0, 0.0, 0.0])
    partners = -np.ones(num_vertices, np.int32)
  return Actor(
      name=name, shapes=shapes, shape_names=tuple(shape_names), faces=faces,
      skull=Mesh(np.asarray(skull.vertices, np.float32), np.asarray(skull.faces, np.int32)),
      mandible=Mesh(np.asarray(mandible.vertices, np.float32),
                    np.asarray(mandible.faces, np.int32)),
      pivot=np.asarray(pivot, np.float32), symmetry=partners.astype(np.int32),
      mirror_plane=np.asarray(plane, np.float32), trusted=trusted, region=region,
      ground_truth=ground_truth, source=source,
      shape_jaws=None if shape_jaws is None else tuple(np.asarray(a, np.float32)
                                                        for a in shape_jaws),
      source_vertex_ids=None if source_vertex_ids is None else np.asarray(source_vertex_ids))
