from .curves import collect_series, load_scalars, plot_curves
from .mim_grid import (GridColumn, denormalize, draw_grid, draw_mim_grid, grid_layout,
                       heat_colours, mim_columns, save_picture)

__all__ = [
    'GridColumn', 'collect_series', 'denormalize', 'draw_grid', 'draw_mim_grid', 'grid_layout',
    'heat_colours', 'load_scalars', 'mim_columns', 'plot_curves', 'save_picture'
]
