"""Pictures for inspection: vertex colours, software renders, plots.

Headless (matplotlib Agg, no pyplot state), numpy + matplotlib + trimesh only; no JAX.
Axes: +x = subject's left, +y up, +z forward (toward the viewer in a front view), mm.
"""

from aim_jax.viz.colors import normal_colors, scalar_colors
from aim_jax.viz.plots import (
    ScalingPanel,
    loglog_slope,
    plot_bars,
    plot_loss_curves,
    plot_per_frame_error,
    plot_scaling,
    plot_tradeoff,
)
from aim_jax.viz.render import render_grid, render_image, render_mesh, render_views

__all__ = [
    'normal_colors', 'scalar_colors', 'ScalingPanel', 'loglog_slope', 'plot_bars',
    'plot_loss_curves', 'plot_per_frame_error', 'plot_scaling', 'plot_tradeoff',
    'render_grid', 'render_image', 'render_mesh',
    'render_views',
]
