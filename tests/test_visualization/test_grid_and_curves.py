"""Pictures that explain themselves: labelled grid header, loss-curve plot, quiet init logs."""
import json
import logging

import numpy as np
import torch
from PIL import Image

from pcae_mm.models.algorithms import MIMOutput
from pcae_mm.models.teachers import TeacherOut
from pcae_mm.visualization import (GridColumn, draw_grid, draw_mim_grid, grid_layout,
                                   plot_curves)


def _out(B=2, L=36, stages=(13, 6, 3)):
    g = torch.Generator().manual_seed(0)
    order = torch.rand(B, L, generator=g).argsort(1)
    mask = torch.ones(B, L)
    mask.scatter_(1, order[:, :9], 0)
    masked = order[:, 9:]
    ids_pred = masked[:, :stages[-1]]
    K = ids_pred.shape[1]
    teacher = TeacherOut(torch.zeros(B, K, 8), ids_pred, [masked[:, :k] for k in stages])
    return MIMOutput(latent=torch.zeros(B, 10, 8), mask=mask, ids_keep=order[:, :9],
                     ids_masked=masked, ids_pred=ids_pred, pred=torch.zeros(B, K, 8),
                     target=torch.zeros(B, K, 8), pixels=False, extras=(teacher, ),
                     similarity=torch.linspace(-.5, .9, K).repeat(B, 1))


def _ink(region: np.ndarray) -> int:
    """Dark (text) pixels in a header region."""
    return int((region.max(-1) < 100).sum())


def test_header_row_names_every_column():
    rgb = np.random.RandomState(0).randint(0, 255, (2, 96, 96, 3)).astype(np.uint8)
    grid = draw_mim_grid(rgb, _out(), 16, pixel_pred=False)
    header, ncols = grid_layout(grid, 2, 96)
    assert ncols == 6  # input, masked, 3 stages, similarity
    # the image grows by the header: it sits on top of the rows of images
    assert header > 20 and grid.shape[0] == header + 2 * 96 + 2
    assert np.array_equal(grid[header:header + 96, :96], rgb[0])
    assert np.array_equal(grid[header + 98:, :96], rgb[1])
    for c in range(ncols):  # every column has a label
        assert _ink(grid[:header, c * 98:c * 98 + 96]) > 20, f'column {c} has no label'
    # the similarity column's header holds a colour bar from blue (-1) to red (+1)
    bar = grid[:header, 5 * 98:5 * 98 + 96].astype(int)
    assert ((bar[..., 2] > 200) & (bar[..., 0] < 60)).any()  # blue end
    assert ((bar[..., 0] > 200) & (bar[..., 2] < 60)).any()  # red end


def test_column_labels_carry_the_counts():
    from pcae_mm.visualization import mim_columns
    rgb = np.zeros((2, 96, 96, 3), np.uint8)
    labels = [c.label for c in mim_columns(rgb, _out(), 16, pixel_pred=False)]
    assert labels[0] == 'input'
    assert '9 of 36' in labels[1]
    assert [('stage %d' % (i + 1)) in lab and f'{k} of 27' in lab
            for i, (lab, k) in enumerate(zip(labels[2:5], (13, 6, 3)))] == [True] * 3
    assert '-0.50 to 0.90' in labels[5]


def test_draw_grid_takes_plain_columns():
    a = np.full((3, 32, 32, 3), 200, np.uint8)
    b = np.zeros((3, 32, 48, 3), np.uint8)
    grid = draw_grid([GridColumn('left', a), GridColumn('right, wider', b, colorbar=(0, 1))])
    header = grid.shape[0] - 3 * 32 - 2 * 2
    assert header > 0 and grid.shape[1] == 32 + 2 + 48
    assert np.array_equal(grid[header:header + 32, 34:], b[0])


def test_plot_curves_from_scalars_json(tmp_path):
    lines = [dict(lr=1e-3, loss=1.0 / (i + 1), loss_rec=.5 / (i + 1), epoch=1, iter=i, step=i)
             for i in range(1, 9)]
    lines.insert(0, {'knn/student_top1': 25.0, 'knn/student_top5': 100.0, 'step': 0})
    lines.append({'knn/student_top1': 50.0, 'knn/student_top1_best': 50.0, 'step': 8})
    path = tmp_path / 'vis_data' / 'scalars.json'
    path.parent.mkdir()
    path.write_text('\n'.join(json.dumps(x) for x in lines) + '\n')
    from pcae_mm.visualization.curves import collect_series
    losses, accs = collect_series([json.loads(x) for x in path.read_text().splitlines()])
    assert set(losses) == {'loss', 'loss_rec'} and set(accs) == {'knn/student_top1'}
    assert accs['knn/student_top1'] == ([0.0, 8.0], [25.0, 50.0])
    out = plot_curves(str(tmp_path), str(tmp_path / 'pics' / 'curves.png'), title='t')
    img = np.asarray(Image.open(out).convert('RGB'))
    assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 10

    from tools.analysis.plot_curves import main
    assert main([str(path)]).endswith('vis_data/curves.png')


def test_init_dump_is_debug_only(capsys):
    """mmengine's per-parameter init dump and FileClient notes: not at INFO, there at DEBUG."""
    import pcae_mm  # noqa: F401 (installs quiet_model_building)
    from mmengine.fileio import FileClient
    from mmengine.logging import MMLogger, print_log
    from mmengine.model import BaseModule

    class Net(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Constant', val=1., layer='Linear'))
            self.fc = torch.nn.Linear(2, 2)

    for level, shown in (('INFO', False), ('DEBUG', True)):
        name = f'quiet_test_{level}'
        logger = MMLogger.get_instance(name, log_level=level)  # current, console only
        try:
            Net().init_weights()
            FileClient('disk')  # what CheckpointHook does on every run: two WARNINGs
            print_log('an unrelated warning', logger='current', level=logging.WARNING)
            text = capsys.readouterr().out
        finally:  # later tests must not log into this test's captured stream
            MMLogger._instance_dict.pop(name)
            for h in list(logger.handlers):
                logger.removeHandler(h)
        assert ('fc.weight' in text) is shown, (level, text)
        assert ('FileClient' in text) is shown
        assert shown or 'HardDiskBackend' not in text  # (made once: FileClient caches it)
        assert 'an unrelated warning' in text  # nothing else is filtered
