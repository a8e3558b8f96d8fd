"""The visualisation tool and hook write real, valid images."""
import glob
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import pcae_mm  # noqa: F401
from pcae_mm.visualization import grid_layout
from tests.helpers import tiny_config


def build_runner(tmp_path, data_root, **extra):
    cfg = Config.fromfile(tiny_config('pcae'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_cfg.max_epochs = 1
    cfg.train_dataloader.persistent_workers = False
    cfg.merge_from_dict(extra)
    return Runner.from_cfg(cfg)


def test_tool_writes_a_valid_png(tmp_path, tiny_imagenet):
    from tools.visualization.visualize_mim import main
    runner = build_runner(tmp_path, tiny_imagenet)
    runner.train()
    ckpt = osp.join(runner.work_dir, 'epoch_1.pth')
    imgs = sorted(glob.glob(osp.join(tiny_imagenet, 'train', '*', '*.JPEG')))[:2]
    out = main([tiny_config('pcae'), ckpt, *imgs, '--out-file', str(tmp_path / 'vis.png')])
    grid = np.asarray(Image.open(out))
    # a header row, then 2 rows of 96 px; columns: input, masked, 3 PTR stages, similarity
    header, ncols = grid_layout(grid, 2, 96)
    assert header > 20 and ncols == 6 and grid.shape[1] == 6 * 96 + 5 * 2
    # the masked column differs from the input (patches greyed), the input is not blank
    row = grid[header:header + 96]
    assert row[:, :96].std() > 5 and not np.array_equal(row[:, :96], row[:, 98:194])


def test_hook_logs_pictures_to_the_visualizer(tmp_path, tiny_imagenet):
    runner = build_runner(
        tmp_path, tiny_imagenet,
        custom_hooks=[dict(type='EMATeacherHook'),
                      dict(type='MIMVisualizationHook', interval=1, num_images=2,
                           out_file=str(tmp_path / 'pictures' / 'pcae.png'))],
        visualizer=dict(type='UniversalVisualizer',
                        vis_backends=[dict(type='LocalVisBackend'),
                                      dict(type='TensorboardVisBackend')]))
    runner.train()
    pngs = glob.glob(osp.join(runner.work_dir, '**', 'vis_image', 'mim_*.png'), recursive=True)
    assert pngs, 'no visualisation written'
    # the same picture at the stable path too
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'pictures' / 'pcae.png')),
                          np.asarray(Image.open(sorted(pngs)[-1])))
    img = np.asarray(Image.open(pngs[0]))
    header, ncols = grid_layout(img, 2, 96)
    assert header > 20 and ncols == 6
    # the same picture went to TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = glob.glob(osp.join(runner.work_dir, '**', 'events.out.tfevents.*'), recursive=True)
    assert events, 'no TensorBoard event file'
    acc = EventAccumulator(osp.dirname(events[0]), size_guidance={'images': 0})
    acc.Reload()
    assert 'mim' in acc.Tags()['images']


def test_pixel_head_reconstruction_is_pasted(tmp_path):
    from pcae_mm.visualization import draw_mim_grid
    rgb = np.random.RandomState(0).randint(0, 255, (1, 32, 32, 3)).astype(np.uint8)
    from pcae_mm.models.algorithms import MIMOutput
    pred = torch.zeros(1, 1, 16 * 16 * 3)
    out = MIMOutput(latent=torch.zeros(1, 2, 8), mask=torch.tensor([[0., 1., 1., 0.]]),
                    ids_keep=torch.tensor([[0, 3]]), ids_masked=torch.tensor([[1, 2]]),
                    ids_pred=torch.tensor([[1]]), pred=pred, target=pred, pixels=True)
    grid = draw_mim_grid(rgb, out, 16, pixel_pred=True, mean=[0] * 3, std=[1] * 3)
    header, ncols = grid_layout(grid, 1, 32)
    assert ncols == 3 and grid.shape == (header + 32, 3 * 32 + 2 * 2, 3)
    recon = grid[header:, 68:]
    # predicted patch 1 (top right) = per-patch mean colour, visible patch 0 copied
    assert np.array_equal(recon[:16, :16], rgb[0, :16, :16])
    assert recon[:16, 16:].std() < 1.0
