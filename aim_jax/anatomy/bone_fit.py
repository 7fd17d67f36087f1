"""Fitting template bones under a skin: similarity, then a smooth warp to tissue depths.

DESIGN.md section 2 (ICT has no bones): a template cranium and mandible are placed under an
actor's neutral skin in two steps.

1. A similarity transform from corresponding points (`similarity_fit`, Umeyama's least squares;
   e.g. incisor tips, eyeball / orbit centres, the nasion), and for the mandible a rigid fit
   (`rigid_fit`) from its own correspondences (lower incisor tip, condyles).
2. A smooth non-rigid warp (`fit_warp`), a sum of Gaussian radial basis functions centred on the
   bones (one displacement field for both bones, so they stay consistent at the joint), solved
   by regularised linear least squares and refined over a few iterations, each re-measuring the
   depths by ray casting. It brings the soft-tissue depth along the inward skin normal at named
   skin landmarks toward published values (`DepthTargets`), keeps anchor points (the teeth) in
   place, and pushes the bone at least `margin_mm` inside the skin wherever the skin lies over
   it.

Depth at a skin point p with outward unit normal n (`skin_depths`): the distance along -n to the
first bone surface (either side: template bones have holes); negative (minus the distance along +n to where the bone is
left) when p lies inside a bone, i.e. the bone pokes out through the skin; NaN when no bone is
found within `max_distance_mm`. Millimetres throughout. numpy / scipy / trimesh only.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import spatial
import trimesh

from aim_jax.anatomy import constraints as constraints_lib


@dataclasses.dataclass(frozen=True)
class DepthTargets:
  """Target soft-tissue depths at L skin landmarks.

  Attributes:
    names: L landmark names.
    points: (L, 3) mm skin points.
    normals: (L, 3) unit outward skin normals there.
    depths: (L,) mm target depths along -normal (the published values).
    weights: (L,) relative weight of each target in the warp.
  """
  names: tuple
  points: np.ndarray
  normals: np.ndarray
  depths: np.ndarray
  weights: np.ndarray


@dataclasses.dataclass(frozen=True)
class WarpSettings:
  """Settings of `fit_warp`.

  Attributes:
    margin_mm: the bone must lie at least this deep under every checked skin point.
    slack_mm: violated points are pushed to margin + slack (so they do not hover on the margin).
    sigma_mm: width of the Gaussian basis functions (larger = smoother warp).
    num_centers: basis functions, at farthest-point samples of the bone vertices.
    ridge: Tikhonov weight on the basis weights (keeps the warp small away from constraints).
    iterations: re-measure-and-solve rounds.
    depth_weight, margin_weight, anchor_weight: weights of the three kinds of constraint rows.
    max_step_mm: per-round cap on each row's requested displacement.
    max_depth_correction_mm: landmarks whose depth is off by more than this are not pulled (their
      ray likely passes through a hole or a thin plate of the template to a deeper structure,
      which the warp must not drag to the skin); they are still reported.
    max_distance_mm: rays look for bone this far (inward) from the skin.
    max_outside_mm: and this far outward (the bone poking out through the skin).
    max_check_points: at most this many checked skin points per round (seeded subset).
    seed: seed of that subset.
  """
  margin_mm: float = 2.0
  slack_mm: float = 0.5
  sigma_mm: float = 20.0
  num_centers: int = 400
  ridge: float = 1e-4
  iterations: int = 12
  depth_weight: float = 1.0
  margin_weight: float = 1.0
  anchor_weight: float = 10.0
  max_step_mm: float = 5.0
  max_depth_correction_mm: float = 15.0
  max_distance_mm: float = 60.0
  max_outside_mm: float = 15.0
  max_check_points: int = 4000
  seed: int = 0


# ---------------------------------------------------------------------------------------------
# Rigid and similarity fits.


def similarity_fit(source: np.ndarray, target: np.ndarray,
                   weights: Optional[np.ndarray] = None, scale: bool = True) -> tuple:
  """Least-squares similarity target ~ s R source + t (Umeyama 1991), det R = +1.

  Args:
    source, target: (N, 3) corresponding points (N >= 3, not collinear).
    weights: (N,) non-negative weights (default 1).
    scale: fit the scale s; else s = 1 (a rigid fit).
  Returns:
    s (float), R (3, 3), t (3,).
  """
  source = np.asarray(source, np.float64)
  target = np.asarray(target, np.float64)
  w = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
  w = w / w.sum()
  mu_s, mu_t = w @ source, w @ target
  xs, xt = source - mu_s, target - mu_t
  covariance = (xt * w[:, None]).T @ xs
  u, singular, vt = np.linalg.svd(covariance)
  d = np.ones(3)
  d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
  rotation = u @ np.diag(d) @ vt
  s = float((singular * d).sum() / (w @ (xs ** 2).sum(axis=1))) if scale else 1.0
  return s, rotation, mu_t - s * rotation @ mu_s


def rigid_fit(source: np.ndarray, target: np.ndarray,
              weights: Optional[np.ndarray] = None) -> tuple:
  """Least-squares rigid transform target ~ R source + t. Returns R (3, 3), t (3,)."""
  _, rotation, translation = similarity_fit(source, target, weights, scale=False)
  return rotation, translation


def apply_similarity(points: np.ndarray, s: float, rotation: np.ndarray,
                     translation: np.ndarray) -> np.ndarray:
  """(..., 3) points -> s R p + t."""
  return s * np.asarray(points, np.float64) @ np.asarray(rotation).T + translation


# ---------------------------------------------------------------------------------------------
# Depths.


def _mesh(vertices, faces) -> trimesh.Trimesh:
  return trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                         process=False)


def _first_hit(mesh: trimesh.Trimesh, origins: np.ndarray, directions: np.ndarray):
  """(hit (R,) bool, distance (R,), facing (R,)) of each ray's first hit.

  facing = dot(triangle normal, ray direction): < 0 when the ray enters the bone there.
  """
  hit, triangle, location = constraints_lib._first_hits(  # pylint: disable=protected-access
      mesh, origins, directions, chunk=65536)
  distance = np.full(len(origins), np.inf)
  facing = np.zeros(len(origins))
  distance[hit] = np.einsum('ij,ij->i', location[hit] - origins[hit], directions[hit])
  facing[hit] = np.einsum('ij,ij->i', mesh.face_normals[triangle[hit]], directions[hit])
  return hit, distance, facing


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
  hit, distance, facing = _first_hit(bone, points + offset_mm * normals, -normals)
  distance -= offset_mm
  inward = hit & (distance <= max_distance_mm)
  depth[inward] = distance[inward]
  # Inside a bone: going outward, the first surface is one where the ray leaves the bone.
  hit, distance, facing = _first_hit(bone, points - offset_mm * normals, normals)
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
# The warp.


def farthest_points(points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
  """(count,) indices of a farthest-point sample of (N, 3) points (greedy, seeded start)."""
  points = np.asarray(points, np.float64)
  count = min(int(count), len(points))
  chosen = np.empty(count, np.int64)
  chosen[0] = np.random.default_rng(seed).integers(len(points))
  distance = np.linalg.norm(points - points[chosen[0]], axis=1)
  for i in range(1, count):
    chosen[i] = np.argmax(distance)
    distance = np.minimum(distance, np.linalg.norm(points - points[chosen[i]], axis=1))
  return chosen


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
    vertices: (N, 3) mm warped vertices (all bones, in the order given).
    history: one dict per round (the state before that round's solve): landmark RMS error
      (mm), worst violation of the margin (mm), number of margin violations, anchor error, score.
    best_round: the round whose state `vertices` is (the lowest score: margin violations in %
      of the checked points plus the pulled landmarks' RMS depth error in mm; the rounds need not improve
      monotonically because rays may jump between surfaces of a holey template).
  """
  vertices: np.ndarray
  history: list
  best_round: int = -1


def fit_warp(bone_vertices: np.ndarray, bone_faces: np.ndarray, skin_vertices: np.ndarray,
             skin_normals: np.ndarray, check: np.ndarray, targets: Optional[DepthTargets],
             anchor_index: Sequence[int] = (), anchor_target: Optional[np.ndarray] = None,
             settings: WarpSettings = WarpSettings()) -> WarpResult:
  """Warps bones smoothly toward target depths, keeping them `margin_mm` inside the skin.

  Each round: cast rays from the landmarks and from (a seeded subset of) the checked skin
  vertices; add rows asking the displacement along the skin normal at the bone point under each
  landmark to correct its depth, under each checked vertex whose depth is below margin (or that
  was so in an earlier round) to make it margin + slack (0 if already deeper), and at each anchor
  to reach its target; solve a Gaussian RBF warp (`solve_warp`) and apply it to every vertex.

  Args:
    bone_vertices: (N, 3) mm; bone_faces: (F, 3) outward-wound triangles (all bones together).
    skin_vertices: (V, 3) mm; skin_normals: (V, 3) unit outward normals.
    check: (V,) bool, skin vertices that must have bone at least margin_mm under them (where bone
      lies under them at all).
    targets: landmark depth targets, or None.
    anchor_index: bone vertex ids to hold at `anchor_target` ((A, 3) mm; default: where they are).
    settings: WarpSettings.
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
  center_index = farthest_points(vertices, settings.num_centers, settings.seed)
  checked = np.flatnonzero(check)
  if checked.size > settings.max_check_points:
    rng = np.random.default_rng(settings.seed)
    checked = np.sort(rng.choice(checked, settings.max_check_points, replace=False))
  active = np.zeros(checked.size, bool)
  goal = settings.margin_mm + settings.slack_mm
  history = []
  best = None
  for _ in range(settings.iterations + 1):
    bone = _mesh(vertices, faces)
    rows = []  # (points, directions, values, weights)
    record = {}
    if targets is not None and len(targets.names):
      depth = skin_depths(bone, targets.points, targets.normals, settings.max_distance_mm,
                          settings.max_outside_mm)
      ok = np.isfinite(depth)
      error = depth[ok] - targets.depths[ok]
      record['landmark_rms_mm'] = float(np.sqrt(np.mean(error ** 2))) if ok.any() else None
      ok &= np.abs(depth - targets.depths) <= settings.max_depth_correction_mm
      error = depth[ok] - targets.depths[ok]
      record['pulled_rms_mm'] = float(np.sqrt(np.mean(error ** 2))) if ok.any() else None
      rows.append((targets.points[ok] - depth[ok, None] * targets.normals[ok],
                   targets.normals[ok], error, settings.depth_weight * targets.weights[ok]))
    depth = skin_depths(bone, skin_vertices[checked], skin_normals[checked],
                        settings.max_distance_mm, settings.max_outside_mm)
    ok = np.isfinite(depth)
    violated = ok & (depth < settings.margin_mm)
    record['worst_margin_violation_mm'] = float(
        max(0.0, (settings.margin_mm - depth[ok]).max())) if ok.any() else 0.0
    record['violations'] = int(violated.sum())
    active |= violated
    use = active & ok
    rows.append((skin_vertices[checked[use]] - depth[use, None] * skin_normals[checked[use]],
                 skin_normals[checked[use]], np.minimum(depth[use] - goal, 0.0),
                 np.full(use.sum(), settings.margin_weight)))
    if anchor_index.size:
      offset = anchor_target - vertices[anchor_index]
      record['anchor_max_mm'] = float(np.linalg.norm(offset, axis=1).max())
      for axis in range(3):
        direction = np.zeros((anchor_index.size, 3))
        direction[:, axis] = 1.0
        rows.append((vertices[anchor_index], direction, offset[:, axis],
                     np.full(anchor_index.size, settings.anchor_weight)))
    history.append(record)
    # Keep the best round: margin violations (in % of the checked points) plus the RMS depth
    # error of the landmarks being pulled.
    score = 100.0 * record['violations'] / max(1, checked.size) + (
        record.get('pulled_rms_mm') or 0.0)
    record['score'] = score
    if best is None or score < best[0]:
      best = (score, vertices, len(history) - 1)
    if len(history) > settings.iterations:
      break
    points, directions, values, weights = (np.concatenate(parts) for parts in zip(*rows))
    values = np.clip(values, -settings.max_step_mm, settings.max_step_mm)
    warp = solve_warp(vertices[center_index], settings.sigma_mm, points, directions, values,
                      weights, settings.ridge)
    vertices = vertices + warp(vertices)
  return WarpResult(vertices=best[1], history=history, best_round=best[2])


# ---------------------------------------------------------------------------------------------
# Report.


def depth_report(bone: trimesh.Trimesh, skin_vertices: np.ndarray, skin_normals: np.ndarray,
                 check: np.ndarray, targets: Optional[DepthTargets], margin_mm: float,
                 max_distance_mm: float = 60.0) -> Dict:
  """How well bones sit under a skin.

  Returns:
    dict with
      landmarks: {name: {'depth_mm': measured (None if no bone), 'published_mm': target}};
      landmark_mean_abs_error_mm: over landmarks with bone under them;
      outside_fraction: fraction of checked skin vertices inside a bone (bone poking out);
      within_margin_fraction: fraction of checked vertices with depth < margin (outside incl.);
      no_bone_fraction: fraction of checked vertices with no bone within max_distance_mm;
      min_depth_mm: the smallest depth over checked vertices with bone under them.
  """
  report = {}
  if targets is not None:
    depth = skin_depths(bone, targets.points, targets.normals, max_distance_mm)
    report['landmarks'] = {
        name: {'depth_mm': None if not np.isfinite(d) else round(float(d), 2),
               'published_mm': float(t)}
        for name, d, t in zip(targets.names, depth, targets.depths)}
    ok = np.isfinite(depth)
    report['landmark_mean_abs_error_mm'] = (
        float(np.abs(depth[ok] - targets.depths[ok]).mean()) if ok.any() else None)
  index = np.flatnonzero(check)
  depth = skin_depths(bone, np.asarray(skin_vertices)[index], np.asarray(skin_normals)[index],
                      max_distance_mm)
  ok = np.isfinite(depth)
  count = max(1, index.size)
  report.update(
      checked_vertices=int(index.size),
      outside_fraction=float(np.sum(ok & (depth < 0)) / count),
      within_margin_fraction=float(np.sum(ok & (depth < margin_mm)) / count),
      no_bone_fraction=float(np.sum(~ok) / count),
      min_depth_mm=float(depth[ok].min()) if ok.any() else None,
      margin_mm=float(margin_mm))
  return report
