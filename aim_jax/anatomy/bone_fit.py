"""Fitting template bones under a skin: similarity, then a smooth warp to tissue depths.

DESIGN.md section 2 (ICT has no bones): a template cranium and mandible are placed under an
actor's neutral skin in three steps.

1. A similarity transform from corresponding points (`rigid_np.similarity_fit`, Umeyama's least
   squares; e.g. incisor tips, eyeball / orbit centres, the nasion), and for the mandible a rigid
   fit (`rigid_np.rigid_fit`) from its own correspondences (lower incisor tip, condyles).
2. A smooth non-rigid warp (`fit_warp`): per bone (`WarpPart`) a sum of Gaussian radial basis
   functions centred on that bone (the mandible gets wider, stiffer ones so it does not bend),
   solved by regularised linear least squares over a few rounds that each re-measure the depths
   and are accepted only when they lower the fit's score (monotone). It brings the soft-tissue
   depth at named skin landmarks toward published values (`depths.DepthTargets`), keeps anchor
   points (the teeth, the condyles) in place, and pushes the bone `margin_mm` (+ slack) inside
   the skin.
3. A guaranteed margin (`push_to_margin`): wherever a checked skin point still has bone closer
   than `margin_mm` (or lies inside a bone), the bone there is pushed away from it, along the
   line from the skin point to its closest bone point (along the inward skin normal when the
   point is inside the bone), by what is missing, with a smooth fall-off over the neighbouring
   bone vertices; repeated until no checked skin point is within the margin.

Depths (closest-point depths, bone heights over the skin) are measured by
`aim_jax.anatomy.depths`. Millimetres throughout. numpy / scipy only.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import spatial

from aim_jax import rigid_np
from aim_jax.anatomy import depths as depths_lib
from aim_jax.anatomy import rays


@dataclasses.dataclass(frozen=True)
class WarpSettings:
  """Settings of `fit_warp` and `push_to_margin`.

  Attributes:
    margin_mm: the bone must lie at least this far from (and inside) every checked skin point.
    slack_mm: violated points are pushed to margin + slack (so they do not hover on the margin).
    sigma_mm: width of the Gaussian basis functions of flexible parts (the cranium).
    num_centers: basis functions of flexible parts, at farthest-point samples of their vertices.
    stiff_sigma_mm, stiff_num_centers: the same for stiff parts (the mandible).
    ridge: Tikhonov weight on the basis weights (keeps the warp small away from constraints).
    iterations: at most this many re-measure-and-solve rounds.
    depth_weight, margin_weight, anchor_weight: weights of the three kinds of constraint rows.
    max_step_mm: per-round cap on each row's requested displacement.
    max_depth_correction_mm: landmarks whose depth is off by more than this are not pulled
      (they are still reported and scored, with their error capped at this).
    max_distance_mm: a skin point with no bone within this has no depth (NaN).
    max_outside_mm: the ray check (`skin_depths`) looks this far outward for bone poking out.
    violation_score_weight: score of a round = mean capped landmark error (mm) + this times the
      mean margin deficit over the checked skin points (mm); a round is kept only if it lowers it.
    push_rounds: at most this many rounds of `push_to_margin` (0: no guaranteed-margin step).
    push_plateau_mm, push_falloff_mm: bone vertices within the plateau of a pushed point move by
      the whole push; the push fades smoothly to 0 at the fall-off distance.
    seed: seed of the farthest-point sampling.
  """
  margin_mm: float = 2.0
  slack_mm: float = 0.5
  sigma_mm: float = 20.0
  num_centers: int = 300
  stiff_sigma_mm: float = 40.0
  stiff_num_centers: int = 60
  ridge: float = 1e-4
  iterations: int = 10
  depth_weight: float = 1.0
  margin_weight: float = 1.0
  anchor_weight: float = 10.0
  max_step_mm: float = 5.0
  max_depth_correction_mm: float = 15.0
  max_distance_mm: float = 60.0
  max_outside_mm: float = 15.0
  violation_score_weight: float = 100.0
  push_rounds: int = 30
  push_plateau_mm: float = 3.0
  push_falloff_mm: float = 8.0
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class WarpPart:
  """One separately warped bone (its own RBF field).

  Attributes:
    name: e.g. 'cranium'.
    vertex_index: (N_p,) the part's vertex ids in the joined bone vertices (triangles must not
      straddle parts).
    stiff: use WarpSettings.stiff_sigma_mm / stiff_num_centers (else sigma_mm / num_centers).
  """
  name: str
  vertex_index: np.ndarray
  stiff: bool = False


# ---------------------------------------------------------------------------------------------
# The warp.


@dataclasses.dataclass(frozen=True)
class RbfWarp:
  """Displacement field u(x) = sum_k exp(-|x - c_k|^2 / (2 sigma^2)) w_k (mm).

  Attributes:
    centers: (K, 3) mm; weights: (K, 3) mm; sigma: mm.
  """
  centers: np.ndarray
  weights: np.ndarray
  sigma: float

  def basis(self, points: np.ndarray) -> np.ndarray:
    """(N, K) basis values at (N, 3) points."""
    squared = spatial.distance.cdist(np.asarray(points, np.float64), self.centers, 'sqeuclidean')
    return np.exp(-squared / (2.0 * self.sigma ** 2))

  def __call__(self, points: np.ndarray, chunk: int = 20000) -> np.ndarray:
    """(N, 3) displacements at (N, 3) points."""
    points = np.asarray(points, np.float64)
    out = np.empty_like(points)
    for start in range(0, len(points), chunk):
      out[start:start + chunk] = self.basis(points[start:start + chunk]) @ self.weights
    return out


def solve_warp(centers: np.ndarray, sigma: float, points: np.ndarray, directions: np.ndarray,
               values: np.ndarray, weights: np.ndarray, ridge: float) -> RbfWarp:
  """The RBF warp whose displacement u satisfies u(points_r) . directions_r ~ values_r.

  Minimises sum_r weights_r (u(p_r) . d_r - v_r)^2 + ridge * R * |W|^2 (R rows) over the (K, 3)
  basis weights W.

  Args:
    centers: (K, 3) mm; sigma: mm.
    points: (R, 3) mm; directions: (R, 3) unit; values: (R,) mm; weights: (R,).
    ridge: regularisation strength (relative to the mean row weight).
  """
  warp = RbfWarp(np.asarray(centers, np.float64), np.zeros((len(centers), 3)), float(sigma))
  if len(points) == 0:
    return warp
  phi = warp.basis(points)  # (R, K)
  # Row r, unknown (k, j): phi[r, k] * d[r, j]; unknowns ordered k-major.
  design = (phi[:, :, None] * np.asarray(directions)[:, None, :]).reshape(len(points), -1)
  w = np.asarray(weights, np.float64)
  normal = design.T @ (design * w[:, None])
  normal[np.diag_indices_from(normal)] += ridge * w.sum()
  solution = np.linalg.solve(normal, design.T @ (w * np.asarray(values, np.float64)))
  return dataclasses.replace(warp, weights=solution.reshape(-1, 3))


@dataclasses.dataclass(frozen=True)
class WarpResult:
  """The warped bone vertices and the fit's history.

  Attributes:
    vertices: (N, 3) mm fitted vertices (all bones, in the order given), after the warp and the
      guaranteed-margin push.
    history: one dict per evaluated state (the first is the start; then each accepted round):
      landmark RMS and capped mean error (mm), margin violations, mean deficit, anchor error,
      score, the step fraction that was accepted.
    best_round: the number of accepted warp rounds.
    push: `push_to_margin`'s summary (rounds, moved vertices, largest push in mm, violations
      left).
  """
  vertices: np.ndarray
  history: list
  best_round: int = 0
  push: Optional[Dict] = None


def _away_directions(points, closest, signed, normals) -> np.ndarray:
  """(P, 3) unit directions from the bone toward the skin point: closest -> point where the
  point is outside the bone and farther than 0.1 mm, else the outward skin normal."""
  use_line = (signed > 0.1)[:, None]
  return np.where(use_line, depths_lib.unit_vectors(points - closest), normals)


def _part_of_vertex(count: int, parts: Sequence[WarpPart]) -> np.ndarray:
  label = np.full(count, -1, np.int64)
  for i, part in enumerate(parts):
    label[np.asarray(part.vertex_index, np.int64)] = i
  if (label < 0).any():
    raise ValueError('fit_warp: every bone vertex must belong to a part')
  return label


def fit_warp(bone_vertices: np.ndarray, bone_faces: np.ndarray, skin_vertices: np.ndarray,
             skin_normals: np.ndarray, check: np.ndarray,
             targets: Optional[depths_lib.DepthTargets],
             anchor_index: Sequence[int] = (), anchor_target: Optional[np.ndarray] = None,
             settings: WarpSettings = WarpSettings(),
             parts: Optional[Sequence[WarpPart]] = None,
             skin_faces: Optional[np.ndarray] = None) -> WarpResult:
  """Warps bones smoothly toward target depths, then guarantees the skin margin.

  Each round measures closest-point depths (`depths.BoneSurface.closest`) at the landmarks and at
  every checked skin vertex, and adds rows asking the displacement at each landmark's closest
  bone point, along the line to the skin point, to correct its depth; at the closest bone point
  of each checked vertex whose depth is below the margin (now or in an earlier accepted round),
  along the line to the skin point, to make it margin + slack (0 if already deeper); and at each
  anchor to reach its target. Each row goes to the part owning its bone point; each part solves
  its own Gaussian RBF warp (`solve_warp`). The round is accepted if it lowers the score
  (`WarpSettings`), else a half, a quarter and an eighth of it are tried, else the warp stops.
  Then `push_to_margin`.

  Args:
    bone_vertices: (N, 3) mm; bone_faces: (F, 3) outward-wound triangles (all bones together).
    skin_vertices: (V, 3) mm; skin_normals: (V, 3) unit outward normals.
    check: (V,) bool, skin vertices that must have bone no closer than margin_mm.
    targets: landmark depth targets, or None.
    anchor_index: bone vertex ids to hold at `anchor_target` ((A, 3) mm; default: where they are).
    settings: WarpSettings.
    parts: separately warped bones (default: one flexible part of all vertices).
    skin_faces: (T, 3) skin triangles, needed by the guaranteed-margin step (`push_to_margin`,
      skipped without them).
  Returns:
    WarpResult.
  """
  vertices = np.array(bone_vertices, np.float64)
  faces = np.asarray(bone_faces, np.int64)
  skin_vertices = np.asarray(skin_vertices, np.float64)
  skin_normals = np.asarray(skin_normals, np.float64)
  anchor_index = np.asarray(anchor_index, np.int64)
  anchor_target = (vertices[anchor_index].copy() if anchor_target is None
                   else np.asarray(anchor_target, np.float64))
  if parts is None:
    parts = [WarpPart('bones', np.arange(len(vertices)))]
  vertex_part = _part_of_vertex(len(vertices), parts)
  face_part = vertex_part[faces[:, 0]]
  centers, sigmas = [], []
  for part in parts:
    index = np.asarray(part.vertex_index, np.int64)
    count = settings.stiff_num_centers if part.stiff else settings.num_centers
    centers.append(index[rigid_np.farthest_points(vertices[index], count, settings.seed)])
    sigmas.append(settings.stiff_sigma_mm if part.stiff else settings.sigma_mm)
  vertex_faces = np.asarray(rays.as_trimesh(vertices, faces).vertex_faces)
  checked = np.flatnonzero(check)
  goal = settings.margin_mm + settings.slack_mm
  cap = settings.max_depth_correction_mm
  has_targets = targets is not None and len(targets.names) > 0

  def evaluate(v: np.ndarray) -> dict:
    surface = depths_lib.BoneSurface(v, faces, vertex_faces)
    state = {'vertices': v}
    record = {}
    if has_targets:
      closest, distance, face, signed = surface.closest(targets.points)
      found = distance <= settings.max_distance_mm
      error = np.where(found, signed - targets.depths, np.nan)
      record['landmark_rms_mm'] = (float(np.sqrt(np.nanmean(error ** 2))) if found.any()
                                   else None)
      record['landmark_capped_mae_mm'] = float(np.mean(np.minimum(
          np.nan_to_num(np.abs(error), nan=cap), cap)))
      state['landmarks'] = (closest, face, signed, error,
                            found & (np.abs(np.nan_to_num(error, nan=np.inf)) <= cap))
    closest, _, face, signed = surface.closest(skin_vertices[checked])
    deficit = np.maximum(settings.margin_mm - signed, 0.0)
    state['skin'] = (closest, face, signed)
    state['violated'] = signed < settings.margin_mm
    record['violations'] = int(state['violated'].sum())
    record['worst_margin_violation_mm'] = float(deficit.max()) if deficit.size else 0.0
    record['mean_deficit_mm'] = float(deficit.mean()) if deficit.size else 0.0
    if anchor_index.size:
      record['anchor_max_mm'] = float(np.linalg.norm(anchor_target - v[anchor_index],
                                                     axis=1).max())
    record['score'] = (record.get('landmark_capped_mae_mm', 0.0)
                       + settings.violation_score_weight * record['mean_deficit_mm'])
    state['record'] = record
    return state

  def step(state: dict, active: np.ndarray) -> np.ndarray:
    """(N, 3) mm displacement of one full round from `state`'s measurements."""
    v = state['vertices']
    rows = []  # (points, directions, values, weights, part)
    if has_targets:
      closest, face, signed, error, pulled = state['landmarks']
      directions = _away_directions(targets.points, closest, signed, targets.normals)
      rows.append((closest[pulled], directions[pulled], error[pulled],
                   settings.depth_weight * targets.weights[pulled], face_part[face[pulled]]))
    closest, face, signed = state['skin']
    use = active
    directions = _away_directions(skin_vertices[checked], closest, signed,
                                  skin_normals[checked])
    rows.append((closest[use], directions[use], np.minimum(signed[use] - goal, 0.0),
                 np.full(use.sum(), settings.margin_weight), face_part[face[use]]))
    if anchor_index.size:
      offset = anchor_target - v[anchor_index]
      for axis in range(3):
        direction = np.zeros((anchor_index.size, 3))
        direction[:, axis] = 1.0
        rows.append((v[anchor_index], direction, offset[:, axis],
                     np.full(anchor_index.size, settings.anchor_weight),
                     vertex_part[anchor_index]))
    points, directions, values, weights, row_part = (np.concatenate(p) for p in zip(*rows))
    values = np.clip(values, -settings.max_step_mm, settings.max_step_mm)
    displacement = np.zeros_like(v)
    for i, part in enumerate(parts):
      mine = row_part == i
      if not mine.any():
        continue
      warp = solve_warp(v[centers[i]], sigmas[i], points[mine], directions[mine], values[mine],
                        weights[mine], settings.ridge)
      index = np.asarray(part.vertex_index, np.int64)
      displacement[index] = warp(v[index])
    return displacement

  state = evaluate(vertices)
  state['record']['step'] = 0.0
  history = [state['record']]
  active = state['violated'].copy()
  accepted = 0
  for _ in range(settings.iterations):
    displacement = step(state, active)
    for fraction in (1.0, 0.5, 0.25, 0.125):
      candidate = evaluate(state['vertices'] + fraction * displacement)
      if candidate['record']['score'] < state['record']['score']:
        break
    else:
      break
    candidate['record']['step'] = fraction
    state = candidate
    history.append(state['record'])
    active |= state['violated']
    accepted += 1
  vertices, push = state['vertices'], None
  if settings.push_rounds > 0 and skin_faces is not None:
    vertices, push = push_to_margin(vertices, faces, skin_vertices, skin_faces, skin_normals,
                                    check, settings)
  return WarpResult(vertices=vertices, history=history, best_round=accepted, push=push)


def push_to_margin(bone_vertices: np.ndarray, bone_faces: np.ndarray, skin_vertices: np.ndarray,
                   skin_faces: np.ndarray, skin_normals: np.ndarray, check: np.ndarray,
                   settings: WarpSettings = WarpSettings()) -> tuple:
  """Moves bone out of the skin's margin: no bone vertex above depth margin_mm under the skin.

  The test is made from the skin (`depths.bone_heights`): its normals are reliable where the
  template bone's are not (thin plates, holes, folds). Each round takes the bone vertices whose
  depth under the skin is below `margin_mm` (or that are outside it) and moves them along the
  skin's inward normal to depth margin + slack; bone vertices within `push_plateau_mm` of a
  pushed one move by the same push, those up to `push_falloff_mm` by a smoothly fading part of it
  (so the two tables of a thin plate move together and no crease appears); a vertex reached by
  several pushes takes the largest. Pushes only move bone inward, so rounds repeat until none is
  needed.

  Args:
    bone_vertices: (N, 3) mm; bone_faces: (F, 3).
    skin_vertices: (V, 3) mm; skin_faces: (T, 3); skin_normals: (V, 3) unit outward;
    check: (V,) bool, the skin that counts (a skin triangle counts if all its corners do).
    settings: WarpSettings (margin_mm, slack_mm, push_*).
  Returns:
    (vertices (N, 3) mm, summary dict: rounds, violations_first / violations_left (bone
    vertices within the margin), moved_vertices, max_push_mm).
  """
  vertices = np.array(bone_vertices, np.float64)
  skin = depths_lib.BoneSurface(skin_vertices, skin_faces)
  normals = np.asarray(skin_normals, np.float64)
  driver = np.asarray(check, bool)
  total = np.zeros_like(vertices)
  summary = {'rounds': 0, 'violations_first': None}
  plateau, falloff = settings.push_plateau_mm, max(settings.push_falloff_mm,
                                                   settings.push_plateau_mm + 1e-6)
  window = settings.margin_mm + settings.slack_mm + 3.0
  for round_ in range(settings.push_rounds + 1):
    index, height, normal, _ = depths_lib.bone_heights(vertices, skin, normals, driver,
                                                       window_mm=window)
    bad = height > -settings.margin_mm
    if summary['violations_first'] is None:
      summary['violations_first'] = int(bad.sum())
    summary['violations_left'] = int(bad.sum())
    if not bad.any() or round_ == settings.push_rounds:
      break
    centers = vertices[index[bad]]
    amount = height[bad] + settings.margin_mm + settings.slack_mm
    push = -amount[:, None] * normal[bad]
    neighbours = spatial.cKDTree(vertices).query_ball_point(centers, falloff)  # All vertices.
    counts = np.array([len(n) for n in neighbours])
    source = np.repeat(np.arange(len(centers)), counts)
    target = np.concatenate([np.asarray(n, np.int64) for n in neighbours])
    distance = np.linalg.norm(vertices[target] - centers[source], axis=1)
    t = np.clip((distance - plateau) / (falloff - plateau), 0.0, 1.0)
    weight = 1.0 - t * t * (3.0 - 2.0 * t)  # 1 on the plateau, smoothstep down to 0.
    magnitude = weight * amount[source]
    order = np.lexsort((magnitude, target))  # Per target vertex, the largest push last.
    last = order[np.r_[target[order][1:] != target[order][:-1], True]]
    delta = weight[last, None] * push[source[last]]
    vertices[target[last]] += delta
    total[target[last]] += delta
    summary['rounds'] = round_ + 1
  moved = np.linalg.norm(total, axis=1)
  summary['moved_vertices'] = int(np.sum(moved > 1e-9))
  summary['max_push_mm'] = float(moved.max()) if len(moved) else 0.0
  return vertices, summary


