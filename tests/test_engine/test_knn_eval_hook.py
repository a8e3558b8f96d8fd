"""KNNEvalHook: the kNN math on toy sets with known answers, and logging through a real Runner."""
import glob
import os.path as osp

import pytest
import torch

from pcae_mm.engine.hooks.knn_eval_hook import (KNNEvalHook, find_ema_teacher, knn_summary,
                                                pool_features, weighted_knn)


def test_weighted_knn_known_answer():
    # bank: class 0 along +x, class 1 along +y, class 2 along -x
    bank = torch.tensor([[1., 0.], [0.9, 0.1], [0., 1.], [0.1, 0.9], [-1., 0.], [-0.9, -0.1]])
    bank_labels = torch.tensor([0, 0, 1, 1, 2, 2])
    query = torch.tensor([[2., 0.1], [0.1, 3.], [-1., 0.05], [0.7, 0.75]])
    query_labels = torch.tensor([0, 1, 2, 2])  # the last one is wrong at top-1 (between 0 and 1)
    acc = weighted_knn(query, query_labels, bank, bank_labels, num_classes=3, k=2,
                       temperature=0.1, topk=(1, 2, 5), chunk_size=3)  # 2 chunks
    assert acc[1] == pytest.approx(75.0)
    assert acc[2] == pytest.approx(75.0)  # neighbours are classes 0 and 1 only: 2 gets no vote
    assert acc[5] == pytest.approx(100.0)  # capped at num_classes: every class is in the top-3


def test_weighted_knn_weights_by_similarity():
    # k=3: two far class-1 neighbours against one very close class-0 neighbour; a low
    # temperature makes the close one win, a high one lets the majority win
    bank = torch.tensor([[1., 0.], [0.6, 0.8], [0.6, -0.8]])
    bank_labels = torch.tensor([0, 1, 1])
    query, label = torch.tensor([[1., 0.]]), torch.tensor([0])
    sharp = weighted_knn(query, label, bank, bank_labels, 2, k=3, temperature=0.05, topk=(1, ))
    flat = weighted_knn(query, label, bank, bank_labels, 2, k=3, temperature=100., topk=(1, ))
    assert sharp[1] == 100.0 and flat[1] == 0.0


def test_weighted_knn_chunking_and_scale_invariance():
    g = torch.Generator().manual_seed(0)
    bank, query = torch.randn(300, 16, generator=g), torch.randn(77, 16, generator=g)
    bl, ql = torch.randint(0, 7, (300, ), generator=g), torch.randint(0, 7, (77, ), generator=g)
    a = weighted_knn(query, ql, bank, bl, 7, k=10, chunk_size=1000)
    b = weighted_knn(3 * query, ql, 0.5 * bank, bl, 7, k=10, chunk_size=8)  # cosine: same
    assert a == b


def test_pool_features():
    tokens = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 3, 4)
    assert torch.equal(pool_features((tokens, ), 'cls'), tokens[:, 0])
    assert torch.equal(pool_features((tokens, ), 'mean'), tokens[:, 1:].mean(1))
    assert pool_features(torch.ones(2, 5, 3, 3)).shape == (2, 5)
    assert pool_features(torch.ones(2, 5)).shape == (2, 5)


def test_knn_summary():
    hist = [(0, dict(student_top1=10., student_top1_best=10.)),
            (5, dict(student_top1=30., student_top1_best=30.)),
            (9, dict(student_top1=25., student_top1_best=30.))]
    assert knn_summary(hist) == {'student_top1': (10., 25.)}


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
