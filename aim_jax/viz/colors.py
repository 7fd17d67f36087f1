"""Per-vertex colours: scalar fields through a colormap, normals as RGB (numpy only).

Colours are (N, 4) uint8 RGBA, the layout trimesh and PLY files use.
"""

from __future__ import annotations

from typing import Optional, Tuple

import matplotlib
import numpy as np

NAN_RGBA = np.array([128, 128, 128, 255], np.uint8)  # Grey for missing (NaN) values.


def scalar_range(values: np.ndarray, vmin: Optional[float] = None,
                 vmax: Optional[float] = None) -> Tuple[float, float]:
  """The colour range: given limits, else the finite min / max of `values`.

  Args:
    values: (N,) scalars, any unit; NaN and inf are ignored.
    vmin: lower limit, or None for the data minimum.
    vmax: upper limit, or None for the data maximum.
  Returns:
    (vmin, vmax) floats; (0, 1) when nothing is finite. vmin == vmax is possible (constant).
  """
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  if vmin is None:
    vmin = float(finite.min()) if finite.size else 0.0
  if vmax is None:
    vmax = float(finite.max()) if finite.size else max(1.0, float(vmin) + 1.0)
  return float(vmin), float(vmax)


def normalize_scalars(values: np.ndarray, vmin: Optional[float] = None,
                      vmax: Optional[float] = None) -> np.ndarray:
  """Maps values linearly to [0, 1] (clipped); a constant field maps to 0.5, NaN stays NaN.

  Args:
    values: (N,) scalars.
    vmin, vmax: the range (see `scalar_range`).
  Returns:
    (N,) float64 in [0, 1] or NaN where `values` is NaN.
  """
  values = np.asarray(values, np.float64)
  lo, hi = scalar_range(values, vmin, vmax)
  if hi > lo:
    t = (values - lo) / (hi - lo)
  else:
    t = np.where(np.isnan(values), np.nan, 0.5)
  return np.clip(t, 0.0, 1.0)  # np.clip keeps NaN.


def scalar_colors(values: np.ndarray, cmap: str = 'viridis', vmin: Optional[float] = None,
                  vmax: Optional[float] = None) -> np.ndarray:
  """Colours a scalar field (thickness in mm, error in mm, a weight ...) through a colormap.

  Args:
    values: (V,) scalars. NaN -> grey (`NAN_RGBA`); +-inf clip to the ends of the range.
    cmap: a matplotlib colormap name (or Colormap).
    vmin: value mapped to the low end of the colormap; None: the finite minimum.
    vmax: value mapped to the high end; None: the finite maximum. A constant field (or
      vmin == vmax) gets the middle colour.
  Returns:
    (V, 4) uint8 RGBA, alpha 255.
  """
  values = np.asarray(values, np.float64).reshape(-1)
  t = normalize_scalars(values, vmin, vmax)
  colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
  nan = np.isnan(t)
  rgba = colormap(np.where(nan, 0.0, t), bytes=True).astype(np.uint8).reshape(-1, 4)
  rgba[:, 3] = 255
  rgba[nan] = NAN_RGBA
  return rgba


def normal_colors(normals: np.ndarray) -> np.ndarray:
  """The usual normal map colouring: RGB = 0.5 * n + 0.5 (n normalised first).

  Args:
    normals: (V, 3) direction vectors (need not be unit; zero or NaN rows give grey).
  Returns:
    (V, 4) uint8 RGBA, alpha 255.
  """
  normals = np.asarray(normals, np.float64).reshape(-1, 3)
  length = np.linalg.norm(normals, axis=-1, keepdims=True)
  ok = np.isfinite(length) & (length > 0)
  unit = np.where(ok, normals / np.where(ok, length, 1.0), 0.0)
  rgb = np.round((0.5 * unit + 0.5) * 255.0).astype(np.uint8)
  return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=-1)


def as_rgba_float(colors: np.ndarray) -> np.ndarray:
  """Any RGB / RGBA colour array to float RGBA in [0, 1].

  Args:
    colors: (N, 3) or (N, 4); uint8 (0..255) or float (0..1).
  Returns:
    (N, 4) float64 in [0, 1].
  """
  colors = np.asarray(colors)
  if colors.ndim != 2 or colors.shape[1] not in (3, 4):
    raise ValueError(f'colours must be (N, 3) or (N, 4), got {colors.shape}')
  if np.issubdtype(colors.dtype, np.integer):
    rgba = colors.astype(np.float64) / 255.0
  else:
    rgba = colors.astype(np.float64)
  if rgba.shape[1] == 3:
    rgba = np.concatenate([rgba, np.ones((len(rgba), 1))], axis=-1)
  return np.clip(rgba, 0.0, 1.0)


def as_rgba_uint8(colors: np.ndarray) -> np.ndarray:
  """Any RGB / RGBA colour array (uint8 or float in [0, 1]) to (N, 4) uint8 RGBA."""
  colors = np.asarray(colors)
  if np.issubdtype(colors.dtype, np.integer) and colors.ndim == 2 and colors.shape[1] == 4:
    return colors.astype(np.uint8)
  return np.round(as_rgba_float(colors) * 255.0).astype(np.uint8)
