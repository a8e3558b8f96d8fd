"""KNNEvalHook: logging through a real Runner, which networks it scores, bad settings (the kNN
maths: tests/test_evaluation/test_knn.py)."""
import glob
import os.path as osp

import pytest

from pcae_mm.engine.hooks.knn_eval_hook import KNNEvalHook, find_ema_teacher


def _mae_cfg(work_dir: str, teacher: bool):
    from tools.tiny_data.digits_knn import digits_cfg
    cfg = digits_cfg('pcae' if teacher else 'mae', work_dir, epochs=2, batch_size=128,
                     hook=dict(interval=1, k=5, eval_teacher=True))
    cfg.train_dataloader.dataset.num_val = 1597  # 200 train images: 2 iterations per epoch
    for name in ('bank_dataloader', 'query_dataloader'):
        cfg.custom_hooks[-1][name].dataset.update(num_val=1597, indices=200)
    cfg.visualizer = dict(type='UniversalVisualizer', vis_backends=[
        dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
    return cfg


def test_hook_logs_knn_to_tensorboard(tmp_path):
    pytest.importorskip('tensorboard')
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    before = set(DefaultScope._instance_dict)
    try:
        runner = Runner.from_cfg(_mae_cfg(str(tmp_path), teacher=True))
        runner.train()
    finally:
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)
    hook = next(h for h in runner.hooks if isinstance(h, KNNEvalHook))
    # random init (step 0), then after each of the 2 epochs (2 iterations each)
    assert [step for step, _ in hook.history] == [0, 2, 4]
    for _, res in hook.history:
        assert set(res) == {'student_top1', 'student_top5', 'student_top1_best',
                            'teacher_top1', 'teacher_top5', 'teacher_top1_best'}
        assert 10.0 < res['student_top1'] <= 100.0  # 10 classes: far above zero on digits
    assert runner.message_hub.get_info('knn/student_top1_best') == max(
        r['student_top1'] for _, r in hook.history)
    events = glob.glob(osp.join(str(tmp_path), '**', 'events.out.tfevents.*'), recursive=True)
    assert events, 'no TensorBoard event file'
    acc = EventAccumulator(osp.dirname(events[0]))
    acc.Reload()
    tags = acc.Tags()['scalars']
    for tag in ('knn/student_top1', 'knn/student_top5', 'knn/teacher_top1',
                'knn/student_top1_best'):
        assert tag in tags, tags
    assert [e.step for e in acc.Scalars('knn/student_top1')] == [0, 2, 4]
    scalars = glob.glob(osp.join(str(tmp_path), '**', 'scalars.json'), recursive=True)
    assert scalars and 'knn/student_top1' in open(scalars[0]).read()


def test_find_ema_teacher_only_for_ema_teachers():
    from mmengine.model import BaseAveragedModel
    from torch import nn

    class Averaged(BaseAveragedModel):
        def avg_func(self, *args):
            pass

    student = nn.Linear(2, 2)
    model = nn.Module()
    model.backbone = student
    assert find_ema_teacher(model) is None
    model.teacher = Averaged(student)
    assert find_ema_teacher(model) is model.teacher.module
    model.teacher = nn.Linear(2, 2)  # a frozen pre-trained teacher (MR-MAE) is not scored
    assert find_ema_teacher(model) is None


def test_hook_rejects_bad_settings():
    with pytest.raises(ValueError, match='interval must be >= 1'):
        KNNEvalHook({}, {}, interval=0)
    with pytest.raises(ValueError, match='pool must be one of'):
        KNNEvalHook({}, {}, pool='max')
