"""Per-vertex colours (aim_jax/viz/colors.py): ranges, colormaps, normal colours, conversions."""

import matplotlib
import numpy as np
import pytest

from aim_jax.viz import colors


def test_scalar_range_ignores_non_finite_values_and_keeps_given_limits():
  values = np.array([3.0, np.nan, -1.0, np.inf, 2.0])
  assert colors.scalar_range(values) == (-1.0, 3.0)
  assert colors.scalar_range(values, vmin=0.0) == (0.0, 3.0)
  assert colors.scalar_range(values, vmax=10.0) == (-1.0, 10.0)
  assert colors.scalar_range(np.array([np.nan])) == (0.0, 1.0)


def test_normalize_scalars_clips_keeps_nan_and_centres_a_constant():
  t = colors.normalize_scalars(np.array([0.0, 5.0, 10.0, 20.0, np.nan]), vmin=0.0, vmax=10.0)
  np.testing.assert_array_equal(t[:4], [0.0, 0.5, 1.0, 1.0])
  assert np.isnan(t[4])
  constant = colors.normalize_scalars(np.array([4.0, 4.0, np.nan]))
  np.testing.assert_array_equal(constant[:2], [0.5, 0.5])
  assert np.isnan(constant[2])


def test_scalar_colors_are_the_colormap_ends_middle_and_grey_for_nan():
  rgba = colors.scalar_colors(np.array([0.0, 1.0, 2.0, np.nan, -np.inf]), cmap='viridis')
  viridis = matplotlib.colormaps['viridis']
  assert rgba.dtype == np.uint8 and rgba.shape == (5, 4)
  np.testing.assert_array_equal(rgba[0], viridis(0.0, bytes=True))
  np.testing.assert_array_equal(rgba[1], viridis(0.5, bytes=True))
  np.testing.assert_array_equal(rgba[2], viridis(1.0, bytes=True))
  np.testing.assert_array_equal(rgba[3], colors.NAN_RGBA)
  np.testing.assert_array_equal(rgba[4], rgba[0])  # -inf clips to the low end.
  assert (rgba[:, 3] == 255).all()


def test_normal_colors_known_answers_and_grey_for_bad_normals():
  rgba = colors.normal_colors(np.array([[0.0, 0.0, 2.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                                        [np.nan, 0.0, 1.0]]))
  np.testing.assert_array_equal(rgba, [[128, 128, 255, 255], [0, 128, 128, 255],
                                       [128, 128, 128, 255], [128, 128, 128, 255]])


def test_rgba_conversions_round_trip_and_refuse_bad_shapes():
  rgb = np.array([[255, 0, 51]], np.uint8)
  np.testing.assert_allclose(colors.as_rgba_float(rgb), [[1.0, 0.0, 0.2, 1.0]])
  np.testing.assert_array_equal(colors.as_rgba_uint8(rgb), [[255, 0, 51, 255]])
  floats = np.array([[0.5, 1.5, -0.2, 0.25]])  # Out-of-range values clip.
  np.testing.assert_array_equal(colors.as_rgba_uint8(floats), [[128, 255, 0, 64]])
  rgba = np.array([[1, 2, 3, 4]], np.int64)
  np.testing.assert_array_equal(colors.as_rgba_uint8(rgba), [[1, 2, 3, 4]])
  assert colors.as_rgba_uint8(rgba).dtype == np.uint8
  with pytest.raises(ValueError, match=r'\(N, 3\) or \(N, 4\), got \(3,\)'):
    colors.as_rgba_float(np.zeros(3))
