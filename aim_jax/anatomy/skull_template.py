"""The template skull: ArtiSynth's VKH upper-airway cranium and mandible, in actor axes.

Source (BSD-style ArtiSynth Models license; the user obtains the files, the package never ships
them): github.com/artisynth/artisynth_models, folder `.../vkhUpperAirway/` with Skull.obj,
Maxilla.obj (upper teeth) and Mandible.obj (lower teeth), in mm with x lateral (midline at
x = -127.03), +y anterior, +z superior. `load_template` converts to the actors' axes (+x the
subject's left, +y up, +z forward; mm): x' = -(x + 127.03), y' = z, z' = y (a proper rotation,
so triangle winding is kept), drops the Skull's small debris components and joins Skull and
Maxilla into the cranium.

Template landmarks (actor axes, mm), used by the similarity placement:
- upper / lower incisor tips: found on the meshes (lowest front midline point of the maxilla,
  highest front midline point of the mandible);
- condyles: the tops of the mandible's condyles (`folder.estimate_pivot`'s rule, per side);
- orbit centres and the bony nasion: read off this template by hand (`ORBIT_CENTER`, `NASION`),
  good to a few mm. The orbit centre stands for the eyeball's centre: mid-orbit in x and y, and
  in depth about 15 mm behind the bony nasion and 5 mm behind the lateral orbital rim (the
  corneal apex lies ~10 mm behind the nasion; ICT's eyeballs, 30 mm across, are deeper still).
Note the template's jaw is slightly open (about 6 degrees): the mandible is placed separately.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from aim_jax import mesh_io
from aim_jax.data.actor import ActorError, Mesh

MIDLINE_X = -127.03  # mm, the template's mid-sagittal plane in its own axes.
# Rows: actor axes from the template's (x' = -x, y' = z, z' = y) after centring x.
TO_ACTOR_AXES = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
FILES = {'skull': 'Skull.obj', 'maxilla': 'Maxilla.obj', 'mandible': 'Mandible.obj'}
SUBFOLDER = 'vkhUpperAirway'
ORBIT_CENTER = np.array([30.0, -120.0, 158.0])  # Left orbit (+x), actor axes, mm.
NASION = np.array([0.0, -110.0, 173.6])


@dataclasses.dataclass(frozen=True)
class Template:
  """Template bones and landmarks in actor axes (mm).

  Attributes:
    cranium: skull + maxilla, debris removed.
    mandible: the mandible.
    landmarks: name -> (3,) mm: upper_incisor, lower_incisor, condyle_left, condyle_right,
      orbit_left, orbit_right, nasion.
    source: the folder read.
  """
  cranium: Mesh
  mandible: Mesh
  landmarks: Dict[str, np.ndarray]
  source: str = ''


def to_actor_axes(vertices: np.ndarray) -> np.ndarray:
  """(N, 3) template coordinates -> actor axes (mm)."""
  return (np.asarray(vertices, np.float64) - [MIDLINE_X, 0.0, 0.0]) @ TO_ACTOR_AXES.T


def drop_small_components(mesh: Mesh, min_vertices: int) -> Mesh:
  """The mesh without its connected components of fewer than `min_vertices` vertices."""
  count = len(mesh.vertices)
  faces = np.asarray(mesh.faces, np.int64)
  edges = sparse.coo_matrix((np.ones(faces.size), (faces.ravel(), np.roll(faces, 1, 1).ravel())),
                            shape=(count, count))
  _, label = csgraph.connected_components(edges, directed=False)
  keep = np.bincount(label)[label] >= min_vertices
  lookup = np.cumsum(keep) - 1
  kept_faces = faces[keep[faces].all(axis=1)]
  return Mesh(np.asarray(mesh.vertices)[keep], lookup[kept_faces])


def join(meshes) -> Mesh:
  """One Mesh holding every mesh's vertices and faces."""
  vertices, faces, offset = [], [], 0
  for mesh in meshes:
    vertices.append(np.asarray(mesh.vertices))
    faces.append(np.asarray(mesh.faces) + offset)
    offset += len(mesh.vertices)
  return Mesh(np.concatenate(vertices), np.concatenate(faces))


def front_midline_extreme(vertices: np.ndarray, highest: bool, half_width_mm: float = 3.0,
                          depth_mm: float = 12.0) -> np.ndarray:
  """The lowest (or highest) vertex near the midline and the front, moved onto x = 0.

  (Incisor tips: the two central incisors' tips are at about the same height; which one is
  picked varies, so the point is projected onto the mid-sagittal plane.)

  Args:
    vertices: (N, 3) mm, actor axes.
    highest: take the highest (max y) instead of the lowest.
    half_width_mm: |x| below this counts as midline.
    depth_mm: within this of the most forward (max z) midline vertex counts as front.
  """
  midline = vertices[np.abs(vertices[:, 0]) < half_width_mm]
  front = midline[midline[:, 2] > midline[:, 2].max() - depth_mm]
  point = front[np.argmax(front[:, 1]) if highest else np.argmin(front[:, 1])].copy()
  point[0] = 0.0
  return point


def condyles(mandible_vertices: np.ndarray, posterior_fraction: float = 0.1) -> tuple:
  """(left (3,), right (3,)) condyle tops: the highest of each side's most posterior vertices."""
  tops = []
  for sign in (1.0, -1.0):
    side = mandible_vertices[mandible_vertices[:, 0] * sign > 0]
    back = side[side[:, 2] <= np.quantile(side[:, 2], posterior_fraction)]
    tops.append(back[np.argmax(back[:, 1])])
  return tops[0], tops[1]


def load_template(path: str, min_component_vertices: int = 100) -> Template:
  """Loads the template bones from the vkhUpperAirway folder (or the folder holding it).

  Raises:
    ActorError: '<file>: <problem>' for a missing or unreadable file.
  """
  path = os.fspath(path)
  if os.path.isdir(os.path.join(path, SUBFOLDER)):
    path = os.path.join(path, SUBFOLDER)
  if not os.path.isdir(path):
    raise ActorError(f'{path}: no such template skull folder (give the ArtiSynth '
                     f'{SUBFOLDER} folder with {", ".join(FILES.values())})')
  meshes = {}
  for name, file_name in FILES.items():
    file = os.path.join(path, file_name)
    if not os.path.isfile(file):
      raise ActorError(f'{file}: missing (the template skull needs '
                       f'{", ".join(FILES.values())})')
    vertices, faces = mesh_io.read_mesh(file)
    meshes[name] = drop_small_components(Mesh(to_actor_axes(vertices), faces),
                                         min_component_vertices)
  cranium = join([meshes['skull'], meshes['maxilla']])
  mandible = meshes['mandible']
  left, right = condyles(mandible.vertices)
  mirror = np.array([-1.0, 1.0, 1.0])
  landmarks = {
      'upper_incisor': front_midline_extreme(meshes['maxilla'].vertices, highest=False),
      'lower_incisor': front_midline_extreme(mandible.vertices, highest=True),
      'condyle_left': left, 'condyle_right': right,
      'orbit_left': ORBIT_CENTER.copy(), 'orbit_right': ORBIT_CENTER * mirror,
      'nasion': NASION.copy(),
  }
  return Template(cranium=cranium, mandible=mandible, landmarks=landmarks, source=path)
