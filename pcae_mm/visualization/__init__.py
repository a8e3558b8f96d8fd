from .mim_grid import draw_mim_grid, denormalize

__all__ = ['draw_mim_grid', 'denormalize']
