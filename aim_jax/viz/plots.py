"""Headless line and bar plots: loss curves, per-frame errors, ablation tables, scaling (PNG).

Figures are pyplot-free `matplotlib.figure.Figure`s (Agg canvas), cleared after saving.
"""

from __future__ import annotations

import os
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

DPI = 100


def _new_figure(size_px: Tuple[int, int]) -> Figure:
  width, height = size_px
  fig = Figure(figsize=((width + 0.01) / DPI, (height + 0.01) / DPI), dpi=DPI,
               facecolor='white')
  FigureCanvasAgg(fig)
  return fig


def _save(fig: Figure, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)
  fig.savefig(str(path), dpi=DPI, facecolor='white')
  fig.clear()
  return str(path)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
  """Trailing moving average ignoring NaN; the first entries average what exists so far.

  Args:
    values: (N,).
    window: number of samples (1 = unchanged).
  Returns:
    (N,) float64; NaN where the window holds no finite value.
  """
  values = np.asarray(values, np.float64)
  if window <= 1 or len(values) == 0:
    return values
  finite = np.isfinite(values)
  csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
  ccount = np.concatenate([[0], np.cumsum(finite)])
  hi = np.arange(1, len(values) + 1)
  lo = np.maximum(hi - window, 0)
  count = ccount[hi] - ccount[lo]
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), np.nan)


def plot_loss_curves(path: str, steps: np.ndarray, curves: Dict[str, np.ndarray],
                     title: Optional[str] = None, smooth: int = 1,
                     size_px: Tuple[int, int] = (800, 500)) -> str:
  """Writes a PNG with one line per loss term against the training step, log-scale y.

  Args:
    path: output .png (parent folders are created).
    steps: (N,) training steps.
    curves: name -> (N,) values (mm, mm^2 or unitless). Values <= 0 or non-finite are not
      drawn (log scale).
    title: plot title.
    smooth: moving-average window in samples; above 1 the raw curve is drawn faintly behind
      the smoothed one.
    size_px: (width, height) in pixels.
  Returns:
    `path`.
  """
  steps = np.asarray(steps, np.float64).reshape(-1)
  fig = _new_figure(size_px)
  ax = fig.add_subplot(1, 1, 1)
  drawn = False
  for name, values in curves.items():
    values = np.asarray(values, np.float64).reshape(-1)
    if len(values) != len(steps):
      raise ValueError(f'curve {name!r} has {len(values)} values for {len(steps)} steps')
    positive = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    if smooth > 1:
      (line,) = ax.plot(steps, positive, lw=0.8, alpha=0.25)
      ax.plot(steps, moving_average(positive, smooth), lw=1.5, color=line.get_color(),
              label=name)
    else:
      ax.plot(steps, positive, lw=1.5, label=name)
    drawn |= bool(np.isfinite(positive).any())
  if drawn:
    ax.set_yscale('log')
  ax.set_xlabel('step')
  ax.set_ylabel('loss')
  ax.grid(True, which='minor', alpha=0.12)
  return _finish(fig, ax, path, title, legend=bool(curves))


def _finish(fig, ax, path: str, title: Optional[str], legend: bool) -> str:
  """Major grid, legend, title and tight layout; saves the figure to `path`."""
  ax.grid(True, which='major', alpha=0.4)
  if legend:
    ax.legend(fontsize=8, loc='best')
  if title:
    ax.set_title(title)
  fig.tight_layout()
  return _save(fig, path)


def plot_per_frame_error(path: str, errors: Dict[str, np.ndarray], title: Optional[str] = None,
                         ylabel: str = 'error (mm)', xlabel: str = 'frame',
                         size_px: Tuple[int, int] = (800, 400)) -> str:
  """Writes a PNG with one error line per method over the frames of a sequence.

  Args:
    path: output .png (parent folders are created).
    errors: method -> (T,) per-frame error in mm (methods may have different lengths); the
      legend shows each method's mean.
    title: plot title.
    ylabel, xlabel: axis labels.
    size_px: (width, height) in pixels.
  Returns:
    `path`.
  """
  fig = _new_figure(size_px)
  ax = fig.add_subplot(1, 1, 1)
  for name, values in errors.items():
    values = np.asarray(values, np.float64).reshape(-1)
    mean = np.nanmean(values) if np.isfinite(values).any() else np.nan
    ax.plot(np.arange(len(values)), values, lw=1.3, label=f'{name} (mean {mean:.3g})')
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_ylim(bottom=0)
  return _finish(fig, ax, path, title, legend=bool(errors))


def plot_bars(path: str, labels: Sequence[str], values: Sequence[float],
              errors: Optional[Sequence[float]] = None,
              reference: Optional[Sequence[float]] = None, ylabel: str = '',
              title: Optional[str] = None, reference_label: str = 'reference',
              size_px: Optional[Tuple[int, int]] = None) -> str:
  """Writes a bar chart PNG for an ablation table: one bar per row, values printed on top.

  Args:
    path: output .png (parent folders are created).
    labels: (K,) bar names.
    values: (K,) bar heights (e.g. mean error in mm).
    errors: (K,) error-bar half lengths (e.g. standard deviations), or None.
    reference: (K,) reference values (e.g. the paper's numbers) drawn as markers; NaN entries
      are skipped. None for no markers.
    ylabel: y-axis label, e.g. 'mean error (mm)'.
    title: plot title.
    reference_label: legend text for the markers.
    size_px: (width, height) in pixels; default grows with the number of bars.
  Returns:
    `path`.
  """
  labels = [str(s) for s in labels]
  values = np.asarray(values, np.float64).reshape(-1)
  if len(values) != len(labels):
    raise ValueError(f'{len(values)} values for {len(labels)} labels')
  size_px = size_px or (max(480, 90 * len(labels) + 160), 440)
  fig = _new_figure(size_px)
  ax = fig.add_subplot(1, 1, 1)
  x = np.arange(len(labels))
  yerr = None if errors is None else np.asarray(errors, np.float64).reshape(-1)
  bars = ax.bar(x, values, yerr=yerr, capsize=4, color='tab:blue', alpha=0.85,
                error_kw={'elinewidth': 1.0, 'ecolor': 'black'})
  del bars
  # Value labels just beyond the bar end or its error bar.
  spread = np.nan_to_num(np.abs(yerr)) if yerr is not None else np.zeros_like(values)
  end = np.where(values >= 0, values + spread, values - spread)
  finite_end = np.abs(end[np.isfinite(end)])
  offset = 0.015 * (float(finite_end.max()) if finite_end.size else 1.0)
  for xi, value, ei in zip(x, values, end):
    if np.isfinite(value):
      ax.text(xi, ei + offset if value >= 0 else ei - offset, f'{value:.3g}', ha='center',
              va='bottom' if value >= 0 else 'top', fontsize=8)
  ax.margins(y=0.1)
  if reference is not None:
    ref = np.asarray(reference, np.float64).reshape(-1)
    ok = np.isfinite(ref)
    ax.plot(x[ok], ref[ok], linestyle='none', marker='D', markersize=7, color='tab:red',
            markeredgecolor='black', label=reference_label, zorder=5)
    ax.legend(fontsize=8, loc='best')
  ax.set_xticks(x)
  long_labels = max((len(s) for s in labels), default=0) > 10
  ax.set_xticklabels(labels, rotation=30 if long_labels else 0,
                     ha='right' if long_labels else 'center', fontsize=9)
  ax.set_ylabel(ylabel)
  if not (values < 0).any():
    ax.set_ylim(bottom=0)
  ax.grid(True, axis='y', alpha=0.4)
  ax.set_axisbelow(True)
  if title:
    ax.set_title(title)
  fig.tight_layout()
  return _save(fig, path)


def plot_tradeoff(path: str, x: Sequence[float], y: Sequence[float], labels: Sequence[str],
                  xlabel: str = '', ylabel: str = '', title: Optional[str] = None,
                  size_px: Tuple[int, int] = (560, 440)) -> str:
  """Writes a PNG of labelled points joined in order (e.g. error against evaluation time for
  growing network widths, the paper's Fig. 18), with a logarithmic x axis.

  Args:
    path: output .png (parent folders are created).
    x, y: (K,) coordinates (x > 0); labels: (K,) point names.
  Returns:
    `path`.
  """
  x = np.asarray(x, np.float64).reshape(-1)
  y = np.asarray(y, np.float64).reshape(-1)
  if not len(x) == len(y) == len(labels):
    raise ValueError(f'{len(x)} x, {len(y)} y and {len(labels)} labels')
  fig = _new_figure(size_px)
  ax = fig.add_subplot(1, 1, 1)
  ax.plot(x, y, marker='o', color='tab:blue')
  ax.margins(0.12)  # Room for the labels of the end points.
  for xi, yi, label in zip(x, y, labels):
    ax.annotate(str(label), (xi, yi), textcoords='offset points', xytext=(6, 6), fontsize=9)
  if np.all(x > 0):
    ax.set_xscale('log')
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x)  # Ticks at the measured values: a log axis has few labelled decades here.
    ax.set_xticklabels([f'{v:.3g}' for v in x], fontsize=8)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, which='both', alpha=0.4)
  if title:
    ax.set_title(title)
  fig.tight_layout()
  return _save(fig, path)


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
  """The exponent p of y ~ a x^p: the least-squares slope of log y against log x.

  Args:
    x, y: (K,) sizes and costs (e.g. vertices and ms per step); pairs where either is not
      finite and positive are left out.
  Returns:
    The slope (1: linear, below 1: sub-linear); NaN with fewer than two distinct x left.
  """
  x = np.asarray(x, np.float64).reshape(-1)
  y = np.asarray(y, np.float64).reshape(-1)
  ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
  if len(np.unique(x[ok])) < 2:
    return float('nan')
  return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


class ScalingPanel(NamedTuple):
  """One panel of `plot_scaling`: a cost against one size, log-log.

  title: panel title; xlabel: the size (e.g. 'vertices'); lines: name -> ((K,) sizes, (K,)
  costs); slopes: exponents of the dashed reference lines x^p drawn through the first line's
  first point (empty for none).
  """
  title: str
  xlabel: str
  lines: Dict[str, Tuple[Sequence[float], Sequence[float]]]
  slopes: Tuple[float, ...] = (1.0,)


def plot_scaling(path: str, panels: Sequence[ScalingPanel], ylabel: str = 'ms per step',
                 title: Optional[str] = None,
                 size_px: Optional[Tuple[int, int]] = None) -> str:
  """Writes a PNG with one log-log panel per size axis (e.g. step time against vertices,
  frames and network width), one line per measured quantity, each labelled with its fitted
  exponent (`loglog_slope`), and dashed reference slopes.

  Args:
    path: output .png (parent folders are created).
    panels: the panels, left to right; sizes must be > 0 (non-positive or non-finite costs are
      not drawn).
    ylabel: y-axis label of every panel.
    title: figure title.
    size_px: (width, height) in pixels; default 420 px per panel by 420.
  Returns:
    `path`.
  """
  size_px = size_px or (420 * max(len(panels), 1), 420)
  fig = _new_figure(size_px)
  for i, panel in enumerate(panels):
    ax = fig.add_subplot(1, max(len(panels), 1), i + 1)
    sizes = set()
    for name, (x, y) in panel.lines.items():
      x = np.asarray(x, np.float64).reshape(-1)
      y = np.asarray(y, np.float64).reshape(-1)
      if len(x) != len(y):
        raise ValueError(f'{panel.title}: line {name!r} has {len(x)} sizes and {len(y)} costs')
      if (x <= 0).any():
        raise ValueError(f'{panel.title}: line {name!r} has sizes <= 0 (log axis)')
      y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
      ax.plot(x, y, marker='o', lw=1.5, label=f'{name} (slope {loglog_slope(x, y):.2f})')
      sizes.update(x.tolist())
    if panel.lines and panel.slopes:
      x0, y0 = (np.asarray(v, np.float64).reshape(-1) for v in next(iter(panel.lines.values())))
      span = np.geomspace(min(sizes), max(sizes), 20)
      for p, style in zip(panel.slopes, ('--', ':', '-.')):
        ax.plot(span, y0[0] * (span / x0[0]) ** p, style, color='gray', lw=1.0,
                label=f'slope {p:g} (reference)')
    ax.set_xscale('log')
    ax.set_yscale('log')
    # Plain numbers at 1, 2 and 5 per decade (a panel often spans less than one decade).
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if sizes:
      ticks = sorted(sizes)
      ax.xaxis.set_minor_formatter(NullFormatter())
      ax.set_xticks(ticks)  # Ticks at the measured sizes.
      ax.set_xticklabels([f'{v:g}' for v in ticks], fontsize=8,
                         rotation=30 if len(ticks) > 6 else 0)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which='minor', alpha=0.12)
    ax.grid(True, which='major', alpha=0.4)
    if panel.lines:
      ax.legend(fontsize=8, loc='best')
    ax.set_title(panel.title, fontsize=10)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return _save(fig, path)
