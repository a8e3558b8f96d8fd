"""Log a picture of what the model masks, keeps and predicts, during training."""
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...visualization import denormalize, draw_mim_grid, save_picture


def visualize_batch(model, inputs: torch.Tensor):
    """Grid (H x W x 3 uint8) for already-normalised ``inputs`` (B x 3 x H x W)."""
    if not hasattr(model, 'reconstruct'):
        raise TypeError(f'{type(model).__name__} has no reconstruct(); cannot visualise it')
    pre = model.data_preprocessor
    mean = pre.mean.flatten().tolist() if getattr(pre, 'mean', None) is not None else [0.] * 3
    std = pre.std.flatten().tolist() if getattr(pre, 'std', None) is not None else [1.] * 3
    was_training = model.training
    model.eval()
    try:
        out = model.reconstruct(inputs)
    finally:
        model.train(was_training)
    rgb = denormalize(inputs, mean, std)
    return draw_mim_grid(rgb, out, model.backbone.patch_size, out.pixels, mean, std)


@HOOKS.register_module()
class MIMVisualizationHook(Hook):
    """Every ``interval`` epochs (or iterations), draw the mask, the tokens kept by each
    token-reduction stage and the prediction (pixels) or prediction/target similarity
    (features) for a few training images, through the runner's Visualizer (PNG with
    ``LocalVisBackend``, TensorBoard with ``TensorboardVisBackend``).

    Args:
        interval (int): Defaults to 1.
        by_epoch (bool): Count epochs (True) or iterations. Defaults to True.
        num_images (int): Images per picture. Defaults to 4.
        name (str): Image name for the backends. Defaults to ``'mim'``.
        out_file (str, optional): Also write the latest picture to this fixed PNG path (the
            backends' file names change with the timestamp and step). Defaults to None.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1, by_epoch: bool = True, num_images: int = 4,
                 name: str = 'mim', out_file: Optional[str] = None) -> None:
        if interval < 1 or num_images < 1:
            raise ValueError('MIMVisualizationHook interval and num_images must be >= 1')
        self.interval = interval
        self.by_epoch = by_epoch
        self.num_images = num_images
        self.name = name
        self.out_file = out_file
        self._batch: Optional[dict] = None

    def _model(self, runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        if not hasattr(self._model(runner), 'reconstruct'):
            raise TypeError(f'MIMVisualizationHook: {type(self._model(runner)).__name__} has '
                            'no reconstruct() method')

    def _draw(self, runner, data_batch: Optional[Sequence]) -> None:
        if data_batch is None:
            return
        model = self._model(runner)
        with torch.no_grad():
            data = model.data_preprocessor(data_batch, training=False)
        inputs = data['inputs']
        inputs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        grid = visualize_batch(model, inputs[:self.num_images])
        runner.visualizer.add_image(self.name, grid, step=runner.iter + 1)
        if self.out_file:
            save_picture(grid, self.out_file)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._batch = data_batch
        if not self.by_epoch and self.every_n_train_iters(runner, self.interval):
            self._draw(runner, data_batch)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self._draw(runner, self._batch)
