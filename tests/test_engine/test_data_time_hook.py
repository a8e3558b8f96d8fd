"""DataTimeHook: a warning per logging window when data loading takes more than 5% of the
iteration time, through a real mmengine Runner (issue 24)."""
import glob
import os.path as osp
import time
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import pcae_mm  # noqa: F401
from pcae_mm.engine.hooks import DataTimeHook
from tests.helpers import ROOT


class SlowData(Dataset):
    def __init__(self, delay: float, size: int = 20) -> None:
        self.delay = delay
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i):
        time.sleep(self.delay)
        return dict(inputs=torch.full((4, ), float(i)))


class SlowStep(BaseModel):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        time.sleep(self.delay)
        return dict(loss=self.fc(torch.stack(inputs) if isinstance(inputs, list)
                                 else inputs).pow(2).mean())


def run(tmp_path, data_delay: float, step_delay: float, size: int = 20, epochs: int = 2,
        **hook):
    runner = Runner(
        model=SlowStep(step_delay),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=SlowData(data_delay, size), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=5), checkpoint=None),
        custom_hooks=[dict(type='DataTimeHook', **hook)],
        default_scope='mmpretrain',
        # a runner of its own name: two runners started in one second would share a logger
        experiment_name=f'data_time_{uuid.uuid4().hex[:8]}')
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, DataTimeHook))
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    return hook, log


def test_warns_per_logging_window_with_back_off_when_input_bound(tmp_path):
    hook, log = run(tmp_path, data_delay=0.01, step_delay=0.0, epochs=3)
    # 30 iterations, the first skipped, windows of the logger's 5: five full windows, all
    # input-bound; warned in the 1st, 2nd and 4th
    assert hook.interval == 5 and len(hook.shares) == 5 and min(hook.shares) > 0.5
    assert hook.warnings == 3 and log.count('of the iteration time over the last 5') == 3
    for streak in (1, 2, 4):
        assert f'{streak} window(s) in a row' in log
    assert 'num_workers (now 0)' in log and 'LoadImageFast' in log
    assert 'GPUDecodeDataPreprocessor' in log and '--data-only' in log


def test_quiet_when_the_step_dominates(tmp_path):
    # 6 iterations of 0.3 s, one window of 5 after the first: the runner's own few ms between
    # iterations (counted as data time by IterTimerHook) stay far below 5%
    hook, log = run(tmp_path, data_delay=0.0, step_delay=0.3, size=12, epochs=1)
    assert len(hook.shares) == 1 and hook.shares[0] < 0.05
    assert hook.warnings == 0 and 'of the iteration time' not in log


def test_own_interval_and_threshold(tmp_path):
    hook, _ = run(tmp_path, data_delay=0.01, step_delay=0.02, interval=19, threshold=0.9)
    assert hook.interval == 19 and hook.warnings == 0  # ~50% data time: below 90%
    with pytest.raises(ValueError, match='threshold'):
        DataTimeHook(threshold=5)
    with pytest.raises(ValueError, match='interval'):
        DataTimeHook(interval=0)


def test_every_pretraining_config_has_it():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'))
    assert cfg.default_hooks.data_time == dict(type='DataTimeHook', threshold=0.05)
