"""pcae_mm.evaluation.knn: the kNN maths on toy sets with known answers, feature extraction
(dataset order, padding duplicates, views), eval mode and the settings check."""
import pytest
import torch
from mmpretrain.structures import DataSample
from torch import nn

from pcae_mm.evaluation.knn import (check_knn_settings, extract_features, in_dataset_order,
                                    knn_accuracies, knn_summary, pool_features, weighted_knn)


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


def test_in_dataset_order_drops_padding_duplicates():
    feats = torch.arange(5.).view(5, 1)  # rank 0 got ids 2, 0, 4; rank 1 got 1, 2 (padding)
    labels = torch.tensor([12, 10, 14, 11, 12])
    ids = torch.tensor([2, 0, 4, 1, 2])
    f, lab = in_dataset_order(feats, labels, ids)
    assert lab.tolist() == [10, 11, 12, 14]
    assert f.view(-1).tolist() == [1., 3., 0., 2.]
    # unknown indices (-1): left as they are
    f, lab = in_dataset_order(feats, labels, torch.tensor([2, 0, -1, 1, 2]))
    assert torch.equal(f, feats) and torch.equal(lab, labels)


class MaskedBackbone(nn.Module):
    """B x 3 x H x W -> (B x (1 + H) x 3 tokens, ): the channel means (as cls) and the row means;
    records the ``mask`` argument and the mode of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def forward(self, x, mask=True):
        self.calls.append((mask, self.training))
        channels = x.mean(dim=(2, 3))  # B x 3
        rows = x.mean(dim=3).transpose(1, 2)  # B x H x 3
        return (torch.cat([channels[:, None], rows], dim=1), )


def batches(images, labels, ids, batch_size=2):
    for s in range(0, len(images), batch_size):
        samples = [DataSample(metainfo=dict(sample_idx=int(i))).set_gt_label(int(lab))
                   for lab, i in zip(labels[s:s + batch_size], ids[s:s + batch_size])]
        yield dict(inputs=images[s:s + batch_size], data_samples=samples)


def as_views(data, training):  # a SelfSupDataPreprocessor returns a list of views
    assert training is False
    return dict(inputs=[data['inputs'] * 2, data['inputs'] * 0], data_samples=data['data_samples'])


def test_extract_features_pools_the_first_view_unmasked_in_dataset_order():
    images = torch.randn(5, 3, 4, 4)
    net = MaskedBackbone()
    out = extract_features({'student': net}, list(batches(images, [0, 1, 2, 0, 1],
                                                          [3, 1, 4, 0, 2])),
                           as_views, pool='mean')
    feats, labels = out['student']
    assert feats.shape == (5, 3) and labels.tolist() == [0, 1, 1, 0, 2]  # ids 0..4
    order = torch.tensor([3, 1, 4, 0, 2]).argsort()
    assert torch.allclose(feats, (images[order] * 2).mean(dim=(2, 3)))  # the first view
    assert {mask for mask, _ in net.calls} == {False}
    with pytest.raises(ValueError, match='empty'):
        extract_features({'student': net}, [], as_views)


def test_knn_accuracies_scores_in_eval_mode_and_restores_training():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 3, 1, 1, generator=g) * 5
    labels = torch.arange(12) % 3
    images = centres[labels] + 0.1 * torch.randn(12, 3, 4, 4, generator=g)
    student, teacher = MaskedBackbone(), MaskedBackbone()
    student.train()
    teacher.eval()
    loader = list(batches(images, labels.tolist(), list(range(12))))
    acc = knn_accuracies({'student': student, 'teacher': teacher}, loader, loader,
                         lambda data, training: data, k=1, pool='cls', topk=(1, 2))
    assert set(acc) == {'student_top1', 'student_top2', 'teacher_top1', 'teacher_top2'}
    assert acc['student_top1'] == 100.0  # k=1: every query finds itself in the bank
    assert {training for _, training in student.calls} == {False}
    assert student.training and not teacher.training


@pytest.mark.parametrize('settings, message', [
    (dict(k=0, temperature=0.07, pool='cls'), 'k must be'),
    (dict(k=20, temperature=0., pool='cls'), 'temperature > 0'),
    (dict(k=20, temperature=0.07, pool='max'), 'pool must be one of'),
])
def test_check_knn_settings_names_the_bad_value(settings, message):
    with pytest.raises(ValueError, match=message):
        check_knn_settings(**settings)
