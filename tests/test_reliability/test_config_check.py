"""Config validation before any work (issue 25): unknown keys name the key, the closest valid
name and the config file, at start; --cfg-options takes dict(...) values."""
import argparse
import os.path as osp

import pytest
from mmengine.config import Config, DictAction

import pcae_mm  # noqa: F401
from pcae_mm.utils.config_check import (CfgOptionsAction, ConfigCheckError, accepted_keys,
                                        check_config)
from tests.helpers import tiny_config
from tests.helpers.train_cli import run_train
from tools import train as TOOL

TINY_PCAE = tiny_config('pcae')


def check(config, **options):
    """check_config as tools/train.py runs it: file keys taken before the options merge."""
    cfg = Config.fromfile(config)
    keys = set(cfg.keys())
    cfg.merge_from_dict(options)
    check_config(cfg, config, keys, options)


def problems(config, **options) -> str:
    with pytest.raises(ConfigCheckError) as err:
        check(config, **options)
    return str(err.value)


def test_top_level_typo_is_an_error_at_start_not_ignored(tmp_path, tiny_imagenet):
    """The issue's silent case: --cfg-options randomnes.seed=1 used to run with seed 0."""
    result = run_train(tmp_path / 'work', tiny_imagenet, 'randomnes.seed=1')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    err = result.stderr
    assert err.startswith('ConfigCheckError: config ') and osp.basename(TINY_PCAE) in err
    assert "unknown key 'randomnes'" in err and "did you mean 'randomness'?" in err
    assert 'set by --cfg-options' in err and '--no-config-check' in err
    assert not (tmp_path / 'work').exists()  # checked before anything was written


def test_model_key_typo_is_caught_before_building():
    """The issue's raw TypeError (model.backbone.mask_ration=0.5)."""
    msg = problems(TINY_PCAE, **{'model.backbone.mask_ration': 0.5})
    assert "'model.backbone.mask_ration'" in msg and 'MIMViT' in msg
    assert "did you mean 'mask_ratio'?" in msg and TINY_PCAE in msg


def test_checkpoint_hook_typo_is_caught_at_start_not_at_the_first_save(tmp_path, tiny_imagenet):
    """The issue's lost epoch: default_hooks.checkpoint.max_keep_ckpt=1 failed at the first save.
    (CheckpointHook keeps unknown keyword arguments for runner.save_checkpoint; the check knows
    where they go.)"""
    with pytest.raises(ConfigCheckError) as err:
        TOOL.main([TINY_PCAE, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                   f'train_dataloader.dataset.data_root={tiny_imagenet}',
                   'default_hooks.checkpoint.max_keep_ckpt=1'])
    msg = str(err.value)
    assert 'SafeCheckpointHook' in msg and "did you mean 'max_keep_ckpts'?" in msg
    assert not (tmp_path / 'work').exists()


@pytest.mark.parametrize('key,owner,close', [
    ('model.neck.embed_dimz', 'PartialDecoder', 'embed_dim'),
    ('model.head.cos_dims', 'FeatureCosineHead', 'cos_dim'),
    ('model.teacher.momentm', 'MaskedEMATeacher', 'momentum'),  # untyped: MaskedEMATeacher(**t)
    ('train_dataloader.batch_sze', 'DataLoader', 'batch_size'),
    ('train_dataloader.dataset.pipeline.1.scal', 'RandomResizedCrop', 'scale'),
    ('train_dataloader.dataset.data_prefx', 'ImageNetLayout', 'data_prefix'),
    ('optim_wrapper.clip_gard', 'OptimWrapper', 'clip_grad'),
    ('optim_wrapper.optimizer.weight_decai', 'AdamW', 'weight_decay'),
    ('param_scheduler.1.eta_mn', 'CosineAnnealingLR', 'eta_min'),
    ('train_cfg.max_epoch', 'EpochBasedTrainLoop', 'max_epochs'),
    ('randomness.sed', 'randomness', 'seed'),
    ('env_cfg.cudnn_benchmrk', 'env_cfg', 'cudnn_benchmark'),
    ('custom_hooks.0.priorty', 'EMATeacherHook', 'priority'),
    ('default_hooks.logger.intervall', 'LoggerHook', 'interval'),
])
def test_typos_in_every_part_name_the_closest_key(key, owner, close):
    msg = problems(TINY_PCAE, **{key: 1})
    assert owner in msg and f"did you mean '{close}'?" in msg, msg


def test_misspelt_types_name_the_closest_registered_one():
    """Second probe: model.type=PCEA was mmengine's KeyError after the Runner was built."""
    msg = problems(TINY_PCAE, **{'model.type': 'PCEA', 'custom_hooks.0.type': 'EMATeacherHok'})
    assert "unknown type 'PCEA' at 'model'" in msg and "did you mean 'PCAE'?" in msg
    assert "did you mean 'EMATeacherHook'?" in msg


def test_nested_teachers_and_mmdet_scope_are_checked():
    mr_mae = tiny_config('mr_mae')
    msg = problems(mr_mae, **{'model.teachers.clip.backbone.out_typ': 'cls_token'})
    assert 'VisionTransformer' in msg and "did you mean 'out_type'?" in msg
    det = 'configs/pcae/benchmarks/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py'
    msg = problems(det, **{'model.roi_head.bbox_head.num_clases': 3})
    assert 'Shared4Conv1FCBBoxHead' in msg and "did you mean 'num_classes'?" in msg


def test_impossible_values_are_named():
    msg = problems(TINY_PCAE, **{'train_dataloader.batch_size': -8,
                                 'optim_wrapper.optimizer.lr': '1e-3x',
                                 'train_dataloader.dataset.data_root': 5,
                                 'train_cfg.max_epochs': 0, 'train_dataloader.num_workers': -1})
    assert "'train_dataloader.batch_size' (set by --cfg-options) is -8" in msg
    assert "'optim_wrapper.optimizer.lr' (set by --cfg-options) is '1e-3x' (str)" in msg
    assert "data_root' (set by --cfg-options) is 5 (int)" in msg
    assert "'train_cfg.max_epochs' (set by --cfg-options) is 0" in msg
    assert 'num_workers' in msg and '5 problems' in msg


def test_keys_the_config_files_define_and_runner_keys_are_valid():
    check(TINY_PCAE, **{'img_size': 96, 'work_dir': '/tmp/x', 'randomness.seed': 3,
                        'randomness.deterministic': True, 'model.backbone.mask_ratio': 0.5,
                        'default_hooks.checkpoint.max_keep_ckpts': 1,
                        'optim_wrapper.clip_grad': dict(max_norm=3.0)})


def test_no_config_check_skips_it(tmp_path, tiny_imagenet):
    args = TOOL.parse_args([TINY_PCAE, '--work-dir', str(tmp_path), '--no-config-check',
                            '--cfg-options', 'randomnes.seed=1',
                            f'train_dataloader.dataset.data_root={tiny_imagenet}'])
    cfg = TOOL.merge_args(Config.fromfile(TINY_PCAE), args, protect=False)
    TOOL.preflight(cfg, args, set(Config.fromfile(TINY_PCAE).keys()))  # no error
    args.no_config_check = False
    with pytest.raises(ConfigCheckError):
        TOOL.preflight(cfg, args, set(Config.fromfile(TINY_PCAE).keys()))


class Base:
    def __init__(self, a=1, init_cfg=None):
        pass


class PassesKwargs(Base):
    def __init__(self, b=2, **kwargs):
        self.c = kwargs.pop('c', 3)
        super().__init__(**kwargs)


class KeepsKwargs(Base):
    def __init__(self, b=2, **kwargs):
        super().__init__()
        self.extra = kwargs


def test_accepted_keys_follow_kwargs_up_the_mro_and_skip_open_signatures():
    assert accepted_keys(PassesKwargs) == {'a', 'b', 'c', 'init_cfg'}
    assert accepted_keys(KeepsKwargs) is None  # truly open-ended: not guessed at


def test_every_tiny_config_passes_with_the_demo_options(tiny_imagenet):
    for method in ('pcae', 'sdae', 'mae', 'pr_mim', 'pr_mim_sdae', 'mr_mae', 'mr_mcmae'):
        check(tiny_config(method), **{'train_dataloader.dataset.data_root': tiny_imagenet,
                                      'train_cfg.max_epochs': 1})


# ------------------------------------------------------------------------ --cfg-options values
def parse(*values):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *values]).cfg_options


def test_dict_values_parse_instead_of_recursing_forever():
    """The issue's RecursionError: mmengine's DictAction on a dict(...) value with a comma."""
    with pytest.raises(RecursionError):
        DictAction._parse_iterable('dict(max_norm=3.0,norm_type=2)')  # the cause, upstream
    assert parse('optim_wrapper.clip_grad=dict(max_norm=3.0, norm_type=2)') == {
        'optim_wrapper.clip_grad': {'max_norm': 3.0, 'norm_type': 2}}
    # mmengine keeps a one-key dict(...) as the string 'dict(max_norm=3.0)'
    assert parse('a=dict(max_norm=3.0)')['a'] == {'max_norm': 3.0}
    assert parse("m=dict(type='LN', eps=1e-6, cfg=dict(x=[1, (2, 3)]))")['m'] == {
        'type': 'LN', 'eps': 1e-6, 'cfg': {'x': [1, (2, 3)]}}
    assert parse('m=dict(type=LN)')['m'] == {'type': 'LN'}  # bare words are strings
    assert parse("m={'a': 1}")['m'] == {'a': 1}
    # everything else as mmengine parses it
    for value in ('1', '1e-3', 'true', 'None', 'a,b', '[1,2]', '(1,2)', '[(1,2),[a,b]]', 'x'):
        assert parse(f'k={value}')['k'] == DictAction._parse_iterable(value)


@pytest.mark.parametrize('value,expected', [
    ('k', 'expected KEY=VALUE'),
    ('k=f(1,2)', 'parentheses may only open the value'),
    ('k=dict(a=1', 'cannot parse the value'),
    ('.k=1', 'malformed key'),
])
def test_malformed_options_are_usage_errors(value, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(value)
    assert exit_.value.code == 2 and expected in capsys.readouterr().err


def test_the_divergence_hint_works_as_written(tmp_path):
    """DivergenceError suggests optim_wrapper.clip_grad=dict(max_norm=3.0): it must work."""
    args = TOOL.parse_args([TINY_PCAE, '--work-dir', str(tmp_path), '--cfg-options',
                            'optim_wrapper.clip_grad=dict(max_norm=3.0)'])
    cfg = TOOL.merge_args(Config.fromfile(TINY_PCAE), args, protect=False)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=3.0)


def test_test_tool_checks_the_config_too(tmp_path, two_epoch_run):
    from tools import test as test_tool
    with pytest.raises(ConfigCheckError, match="did you mean 'batch_size'"):
        test_tool.main([TINY_PCAE, osp.join(two_epoch_run, 'epoch_1.pth'), '--work-dir',
                        str(tmp_path), '--cfg-options', 'test_dataloader.batch_sze=2'])
