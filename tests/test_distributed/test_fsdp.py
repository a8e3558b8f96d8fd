"""FSDP on CPU (issue 13): 2 gloo processes, mmengine FlexibleRunner + FSDPStrategy, the
tiny PCAE / SdAE / MR-MAE configs with configs/_base_/strategies/fsdp_bf16.py.

Exactness trick: the 2-process runs read a dataset in which samples 2k and 2k+1 are the same
image (sampler shuffle off, same seed on both ranks, ``diff_rank_seed=False``), so each rank
sees the single-process run's batches and draws the same masks / crops / drop paths; the
averaged gradient then equals the single-process gradient and every weight -- student, EMA
teacher -- must match the single-process run (fp32, no mixed precision for this comparison).

Cost: one 2-process launch for every FSDP run (tests/test_distributed/train_many.py), one
single-process launch for the references (both at once), one tools/dist_train.sh --resume.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS
from torch import nn

import pcae_mm  # noqa: F401  (registers; allow-lists mmengine checkpoint globals)
from pcae_mm.engine.fsdp import full_parameters, replicated_modules, vit_block_wrap_policy
from tests.helpers import ROOT, random_teacher_options, tiny_config, tool_env
from tests.helpers.cli import free_port, load

FSDP_BASE = osp.join(ROOT, 'configs/_base_/strategies/fsdp_bf16.py')
WORKER = osp.join(ROOT, 'tests/test_distributed/train_many.py')
TINY = {name: tiny_config(name) for name in ('pcae', 'sdae', 'mr_mae')}
ATOL = 1e-6

# identical batches on every rank and in the single-process run; SdAE also accumulates
# gradients over 2 iterations with the per-iteration EMA of the -iterema config (its EMA
# must then step on optimizer steps only)
COMMON = """
randomness = dict(seed=0, diff_rank_seed=False)
train_dataloader = dict(batch_size=4, sampler=dict(shuffle=False))
default_hooks = dict(logger=dict(interval=1))
"""
EXTRA = dict(sdae="optim_wrapper = dict(accumulative_counts=2)\n"
                  "model = dict(teacher=dict(update_by='iter'))  # as sdae-iterema\n")
FP32 = 'strategy = dict(model_wrapper=dict(mixed_precision=None))  # exact comparison\n'


def _write_config(folder, name, bases, body):
    path = osp.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {bases!r}\n{body}')
    return path


def _duplicated(root, folder):
    """``root``'s training set with every sample twice in a row (2k, 2k+1 = the same image)."""
    os.makedirs(osp.join(folder, 'meta'), exist_ok=True)
    os.symlink(osp.join(root, 'train'), osp.join(folder, 'train'))
    with open(osp.join(root, 'meta', 'train.txt')) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    with open(osp.join(folder, 'meta', 'train.txt'), 'w') as f:
        f.write(''.join(f'{line}\n{line}\n' for line in lines))
    return folder


def _argv(config, work, data_root, epochs, options=(), resume=None):
    """tools/train.py arguments (also those of tools/dist_train.sh after CONFIG NPROC)."""
    return [config, '--work-dir', work, *(['--resume', resume] if resume else []),
            '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'train_cfg.max_epochs={epochs}', *options]


def _launch(runs, folder, name, nproc):
    path = osp.join(folder, f'{name}.json')
    with open(path, 'w') as f:
        json.dump(runs, f)
    cmd = [sys.executable, WORKER, path]
    if nproc > 1:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
               '--master_addr=127.0.0.1', f'--master_port={free_port()}', WORKER, path]
    with open(osp.join(folder, f'{name}.log'), 'w') as log:  # the child keeps its own handle
        return subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=log, stderr=subprocess.STDOUT)


def _wait(proc, folder, name):
    rc = proc.wait(timeout=600)
    with open(osp.join(folder, f'{name}.log')) as f:
        out = f.read()
    assert rc == 0, out[-6000:]
    return out


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_imagenet):
    """Every FSDP run (2 processes) and its single-process reference, launched at once."""
    tmp = str(tmp_path_factory.mktemp('fsdp'))
    dup = _duplicated(tiny_imagenet, osp.join(tmp, 'dup'))
    teachers = random_teacher_options(TINY['mr_mae'], tmp)
    fsdp_runs, ref_runs = [], []
    for name, tiny in TINY.items():
        body = COMMON + EXTRA.get(name, '')
        extra = teachers if name == 'mr_mae' else []
        fsdp = _write_config(tmp, f'{name}_fsdp', [tiny, FSDP_BASE], body + FP32)
        ref = _write_config(tmp, f'{name}_ref', [tiny], body)
        fsdp_runs.append(_argv(fsdp, osp.join(tmp, f'{name}_fsdp'), dup, 1, extra))
        ref_runs.append(_argv(ref, osp.join(tmp, f'{name}_ref'), tiny_imagenet, 1, extra))
    # PCAE straight to epoch 2, for the FSDP stop-and-resume test
    ref_runs.append(_argv(osp.join(tmp, 'pcae_ref.py'), osp.join(tmp, 'pcae_straight'),
                          tiny_imagenet, 2))
    # the shipped strategy as it is (bf16 mixed precision) + the documented CPU override
    bf16 = _write_config(tmp, 'pcae_bf16', [TINY['pcae'], FSDP_BASE], COMMON)
    fsdp_runs.append(_argv(bf16, osp.join(tmp, 'pcae_bf16'), dup, 1,
                           ['strategy.model_wrapper.device_id=cpu']))
    procs = [(_launch(fsdp_runs, tmp, 'fsdp', 2), 'fsdp'),
             (_launch(ref_runs, tmp, 'ref', 1), 'ref')]
    logs = {name: _wait(p, tmp, name) for p, name in procs}
    return dict(tmp=tmp, dup=dup, logs=logs)


def _state(folder, epoch=1):
    return load(osp.join(folder, f'epoch_{epoch}.pth'))['state_dict']


def _assert_same_optimizer(got, want):
    """FSDP's full optimizer state (keyed by parameter name) equals the single-process one
    (keyed by index): same groups in the same order, same AdamW moments."""
    assert len(got['param_groups']) == len(want['param_groups'])
    for g, w in zip(got['param_groups'], want['param_groups']):
        assert g['lr'] == pytest.approx(w['lr']) and len(g['params']) == len(w['params']) == 1
        (name, ), (index, ) = g['params'], w['params']
        for key, value in want['state'][index].items():
            torch.testing.assert_close(got['state'][name][key], value, atol=ATOL, rtol=0,
                                       msg=f'{name} {key}')


def _assert_same(got, want):
    assert sorted(got) == sorted(want)  # same checkpoint layout as a single-process run
    for k, v in want.items():
        assert got[k].dtype == v.dtype, k
        if v.is_floating_point():
            torch.testing.assert_close(got[k], v, atol=ATOL, rtol=0, msg=k)
        else:
            assert torch.equal(got[k], v), k


@pytest.mark.parametrize('name', list(TINY))
def test_fsdp_two_processes_match_single_process(runs, name):
    log = runs['logs']['fsdp']
    assert "'backend': 'gloo'" in log  # CPU
    # blocks are FSDP units (sharded), teachers are not wrapped (replicated)
    # 4 encoder + 2 decoder blocks sharded as their own units, the teachers replicated
    assert ("FSDP: 7 units (root + 6 wrapped modules, e.g. ['_fsdp_wrapped_module.backbone."
            "layers.0', '_fsdp_wrapped_module.backbone.layers.1']); replicated, not sharded: "
            + ("['target_generator']" if name == 'mr_mae' else "['teacher']")) in log
    got = _state(osp.join(runs['tmp'], f'{name}_fsdp'))
    want = _state(osp.join(runs['tmp'], f'{name}_ref'))
    _assert_same(got, want)  # student, EMA teacher (PCAE/SdAE), decoder, mimic heads
    _assert_same_optimizer(
        load(osp.join(runs['tmp'], f'{name}_fsdp', 'epoch_1.pth'))['optimizer'],
        load(osp.join(runs['tmp'], f'{name}_ref', 'epoch_1.pth'))['optimizer'])
    if name != 'mr_mae':  # the EMA stepped
        assert int(got['teacher.steps']) == (2 if name == 'sdae' else 4)
        assert not torch.equal(got['teacher.module.layers.0.attn.qkv.weight'],
                               got['backbone.layers.0.attn.qkv.weight'])


def test_fsdp_gradient_accumulation_steps_ema_on_optimizer_steps(runs):
    """SdAE (per-iteration EMA) with accumulative_counts=2: 4 iterations = 2 optimizer steps =
    2 EMA updates, and
    the teacher equals the single-process accumulated run's (checked in the test above)."""
    ckpt = load(osp.join(runs['tmp'], 'sdae_fsdp', 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == 4
    assert int(ckpt['state_dict']['teacher.steps']) == 2


def test_shipped_bf16_strategy_trains_on_cpu(runs):
    """configs/_base_/strategies/fsdp_bf16.py unchanged (bf16 mixed precision) plus
    strategy.model_wrapper.device_id=cpu: trains, the replicated teacher stays fp32."""
    state = _state(osp.join(runs['tmp'], 'pcae_bf16'))
    assert int(state['teacher.steps']) == 4
    for k, v in state.items():
        if v.is_floating_point():
            assert v.dtype == torch.float32 and torch.isfinite(v).all(), k
    ref = _state(osp.join(runs['tmp'], 'pcae_ref'))
    for k in ('backbone.layers.0.attn.qkv.weight', 'teacher.module.layers.0.attn.qkv.weight',
              'neck.decoder_pred.weight'):  # bf16 compute: close to the fp32 run
        torch.testing.assert_close(state[k], ref[k], atol=1e-3, rtol=0, msg=k)


def test_fsdp_resume_through_dist_train_and_export(runs):
    """tools/dist_train.sh --resume continues the FSDP run exactly: stopped after epoch 1 and
    resumed (every rank's RNG state given back by ExactResumeHook, optimizer, lr and EMA
    schedules continued), epoch 2 equals the run that went straight to epoch 2 (single
    process, which the 2-process FSDP run equals, see above). The checkpoint loads into
    mmpretrain's VisionTransformer with no missing key."""
    work = osp.join(runs['tmp'], 'pcae_resume')
    shutil.copytree(osp.join(runs['tmp'], 'pcae_fsdp'), work)
    env = tool_env(PYTHON=sys.executable, PORT=str(free_port()))
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', osp.join(runs['tmp'], 'pcae_fsdp.py'), '2',
         *_argv(osp.join(runs['tmp'], 'pcae_fsdp.py'), work, runs['dup'], 2,
                resume=osp.join(work, 'epoch_1.pth'))[1:]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'resumed epoch: 1, iter: 4' in out.lower(), out[-3000:]
    assert 'Epoch(train) [1]' not in out
    ckpt = load(osp.join(work, 'epoch_2.pth'))
    assert ckpt['meta']['iter'] == 8
    assert int(ckpt['state_dict']['teacher.steps']) == 8  # schedule continued, not restarted
    assert len(ckpt['rng_state_per_rank']) == 2  # saved by both ranks, given back to each
    _assert_same(ckpt['state_dict'], _state(osp.join(runs['tmp'], 'pcae_straight'), 2))

    backbone = {k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()
                if k.startswith('backbone.')}
    vit = VisionTransformer(arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                      feedforward_channels=256), img_size=96, patch_size=16)
    result = vit.load_state_dict(backbone, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


# ---------------------------------------------------------------- in-process, no processes
class _Block(nn.Module):
    pass


class TransformerEncoderLayer(nn.Module):
    pass


def test_vit_block_wrap_policy_wraps_blocks_by_class():
    assert vit_block_wrap_policy(nn.Linear(2, 2), recurse=True, nonwrapped_numel=6)
    assert vit_block_wrap_policy(TransformerEncoderLayer(), recurse=False, nonwrapped_numel=1)
    assert not vit_block_wrap_policy(_Block(), recurse=False, nonwrapped_numel=10**9)
    assert vit_block_wrap_policy(_Block(), recurse=False, nonwrapped_numel=1,
                                 block_types=['_Block'])
    assert not vit_block_wrap_policy(TransformerEncoderLayer(), recurse=False,
                                     nonwrapped_numel=1, min_num_params=2)


def test_replicated_modules_declared_by_the_algorithm():
    class Algo(nn.Module):
        def __init__(self):
            super().__init__()
            self.student, self.teacher, self.extra = nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU()

        def fsdp_ignored_modules(self):
            return [self.teacher]

    algo = Algo()
    assert replicated_modules(algo) == [algo.teacher]
    assert replicated_modules(algo, ['extra', algo.teacher]) == [algo.teacher, algo.extra]
    with pytest.raises(KeyError, match='nope'):
        replicated_modules(algo, ['nope'])
    with full_parameters(algo):  # no FSDP: nothing happens
        pass


def test_algorithms_declare_their_teachers():
    pcae = MODELS.build(dict(Config.fromfile(TINY['pcae']).model))
    assert pcae.fsdp_ignored_modules() == [pcae.teacher]


FSDP_CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
                      if 'fsdp' in osp.basename(p))


@pytest.mark.parametrize('path', FSDP_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_shipped_fsdp_config_builds(path):
    """The shipped FSDP configs: FlexibleRunner + FSDPStrategy with this wrapper and policy, a
    plain OptimWrapper (FSDP does the bf16), every student block its own unit, teachers out."""
    from mmengine._strategy import FSDPStrategy
    from mmengine.registry import FUNCTIONS, STRATEGIES, DefaultScope
    from mmpretrain.registry import MODEL_WRAPPERS
    cfg = Config.fromfile(path)
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == 'TeacherFSDPStrategy'
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        strategy = STRATEGIES.build(dict(cfg.strategy))
        # checkpoints in the single-process / DDP layout
        assert isinstance(strategy, FSDPStrategy) and strategy._is_full_state_dict()
        assert MODEL_WRAPPERS.get(cfg.strategy.model_wrapper.type) is not None
        policy = FUNCTIONS.get(cfg.strategy.model_wrapper.auto_wrap_policy.type)
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
    ignored = replicated_modules(model)
    assert ignored, 'the algorithm declares no teacher to replicate'
    skip = {id(m) for t in ignored for m in t.modules()}
    units = [n for n, m in model.named_modules()
             if id(m) not in skip and policy(m, recurse=False, nonwrapped_numel=1)]
    depth = len(model.backbone.layers) + len(model.neck.decoder_blocks)
    assert len(units) == depth, units
