"""The EMA horizon as a share of the run (issue 22): ``horizon`` / ``end_horizon`` derive the
momenta from the run's length so a short run is a scaled copy of the recipe's time scale."""
import math

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS
from torch import nn

import pcae_mm  # noqa: F401
from pcae_mm.models.teachers import EMATeacher
from pcae_mm.models.teachers.ema import ema_settings, horizon_momentum, momentum_horizon
from tests.helpers import ROOT, tiny_config

IMAGENET_1K_TRAIN = 1_281_167  # images in ImageNet-1k's train split


def recipe_iterations(cfg: Config, gpus: int = 8) -> int:
    """Optimizer steps of a full recipe: epochs x iterations per epoch on ImageNet-1k, each of
    ``gpus`` ranks taking ceil(N / gpus) samples (DefaultSampler) in batches of the config's
    per-GPU batch (the last one partial: drop_last is off)."""
    per_rank = math.ceil(IMAGENET_1K_TRAIN / gpus)
    return cfg.train_cfg.max_epochs * math.ceil(per_rank / cfg.train_dataloader.batch_size)


def test_formula_and_its_inverse():
    assert horizon_momentum(0.1, 1000) == pytest.approx(0.99)  # 1 / (1 - m) = 100 = 10% of 1000
    assert momentum_horizon(0.99, 1000) == pytest.approx(0.1)
    assert momentum_horizon(1.0, 1000) == math.inf
    for h, k in ((0.1065, 93_900), (0.03, 400), (0.5, 7)):
        assert momentum_horizon(horizon_momentum(h, k), k) == pytest.approx(h)
    assert horizon_momentum(0.05, 10) == 0.0  # half an update: the teacher copies the student


def test_a_short_run_is_a_scaled_copy_of_the_long_one():
    """With the end at 1.0, 1 - m at the same share of the run is inversely proportional to the
    run's length: the horizon in units of the run is the same at every point."""
    long, short = (EMATeacher(nn.Linear(2, 2), momentum=None, horizon=0.1) for _ in range(2))
    long.set_schedule(10_000)
    short.set_schedule(100)
    for share in (0.0, 0.25, 0.5, 0.9):
        h_long = momentum_horizon(long.momentum_at(int(share * 10_000)), 10_000)
        h_short = momentum_horizon(short.momentum_at(int(share * 100)), 100)
        assert h_short == pytest.approx(h_long, rel=1e-9)


def test_the_recipes_literal_momenta_are_the_tiny_configs_horizons():
    """The full recipes keep the paper's momenta; at their own length they are the horizons the
    tiny configs give as shares of the run (the formula of EMAModel)."""
    pcae = Config.fromfile(ROOT + '/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    assert (pcae.model.teacher.momentum, pcae.model.teacher.end_momentum) == (0.9999, 1.0)
    K = recipe_iterations(pcae)
    assert K == 93_900  # 300 epochs x 313 iterations of 8 x 512
    tiny = Config.fromfile(tiny_config('pcae')).model.teacher
    assert tiny.momentum is None and tiny.end_momentum == 1.0
    assert tiny.horizon == pytest.approx(momentum_horizon(0.9999, K))  # 10,000 / 93,900
    assert tiny.horizon == pytest.approx(0.1065, abs=1e-4)

    sdae = Config.fromfile(ROOT + '/configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py')
    t = sdae.model.teacher
    assert (t.momentum, t.end_momentum, t.update_by) == (0.96, 0.99, 'epoch')
    K = sdae.train_cfg.max_epochs  # one update per epoch
    for name in ('sdae', 'pr_mim_sdae'):
        tiny = Config.fromfile(tiny_config(name)).model.teacher
        assert tiny.update_by == 'epoch' and tiny.momentum is None and tiny.end_momentum is None
        assert tiny.horizon == pytest.approx(momentum_horizon(0.96, K))  # 25 / 300 epochs
        assert tiny.end_horizon == pytest.approx(momentum_horizon(0.99, K))  # 100 / 300


def test_the_800_epoch_recipe_states_its_own_horizon():
    """The 800-epoch recipe keeps 0.9999 too (the paper's value), i.e. a shorter share of its
    longer run; the tiny configs copy the 300-epoch recipe's."""
    cfg = Config.fromfile(ROOT + '/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-800e_in1k.py')
    assert cfg.model.teacher.momentum == 0.9999
    assert momentum_horizon(0.9999, recipe_iterations(cfg)) == pytest.approx(0.04, abs=1e-3)


@pytest.mark.parametrize('method,K', [('pcae', 840), ('sdae', 40), ('pr_mim_sdae', 40)])
def test_tiny_teachers_derive_their_momenta_from_the_run(method, K):
    cfg = Config.fromfile(tiny_config(method))
    model = MODELS.build(cfg.model)
    t = model.teacher
    with pytest.raises(RuntimeError, match='EMATeacherHook'):
        t.momentum_at(0)  # no run length yet
    t.set_schedule(K)
    assert t.momentum == pytest.approx(1 - 1 / (cfg.model.teacher.horizon * K))
    assert t.momentum_at(0) == pytest.approx(t.momentum)
    end = cfg.model.teacher.get('end_horizon')
    assert t.momentum_at(K) == pytest.approx(1.0 if end is None else 1 - 1 / (end * K))
    assert f'of {K} updates' in t.describe()


def test_without_a_horizon_the_defaults_are_the_pcae_recipes():
    t = EMATeacher(nn.Linear(2, 2))
    assert (t.momentum, t.end_momentum, t.horizon, t.end_horizon) == (0.9999, 1.0, None, None)
    t = EMATeacher(nn.Linear(2, 2), momentum=None, end_momentum=None)
    assert (t.momentum, t.end_momentum) == (0.9999, 1.0)


def test_under_one_update_the_teacher_copies_the_student():
    t = EMATeacher(nn.Linear(2, 2), momentum=None, end_momentum=None, horizon=0.0833,
                   end_horizon=0.333, update_by='epoch')
    t.set_schedule(4)  # 0.33 and 1.33 updates
    assert t.momentum == 0.0 and t.end_momentum == pytest.approx(0.25, abs=1e-3)


def test_the_methods_defaults_step_aside_for_a_horizon():
    assert ema_settings(dict(horizon=0.1), momentum=0.9999, end_momentum=1.0) == dict(
        horizon=0.1, end_momentum=1.0)
    assert ema_settings(None, momentum=0.96, end_momentum=0.99, update_by='epoch') == dict(
        momentum=0.96, end_momentum=0.99, update_by='epoch')
    cfg = Config.fromfile(ROOT + '/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    cfg.model.backbone.update(arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                        feedforward_channels=256), img_size=96)
    cfg.model.neck.update(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4,
                          out_dims=64)
    cfg.model.teacher = dict(horizon=0.2)  # no momentum: the method's default gives way
    model = MODELS.build(cfg.model)
    model.teacher.set_schedule(50)
    assert model.teacher.momentum == pytest.approx(0.9)


@pytest.mark.parametrize('kwargs,match', [
    (dict(momentum=0.99, horizon=0.1), r'momentum=0.99 and horizon=0.1 both given.*momentum=None'),
    (dict(end_momentum=1.0, end_horizon=0.3), r'end_momentum=1.0 and end_horizon=0.3 both'),
    (dict(momentum=None, horizon=0), 'horizon must be a share of the run > 0'),
    (dict(momentum=None, horizon=-0.1), 'horizon must be a share of the run > 0'),
    (dict(momentum=None, horizon=math.inf), 'horizon must be a share of the run > 0'),
    (dict(momentum=None, horizon='10%'), 'horizon must be a share of the run > 0'),
    (dict(momentum=None, horizon=True), 'horizon must be a share of the run > 0'),
    (dict(end_momentum=None, end_horizon=0.0), 'end_horizon must be a share'),
    (dict(momentum=1.5), r'momentum must be in \[0, 1\]'),
    (dict(momentum='0.99'), r'momentum must be in \[0, 1\]'),
])
def test_bad_values_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EMATeacher(nn.Linear(2, 2), **kwargs)


def test_a_bad_horizon_in_a_config_fails_at_build_time():
    cfg = Config.fromfile(tiny_config('pcae'))
    cfg.model.teacher.momentum = 0.999  # and the tiny config's horizon
    with pytest.raises(ValueError, match='set momentum=None to use it'):
        MODELS.build(cfg.model)
