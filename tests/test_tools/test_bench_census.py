"""The benchmark's host-sync / SDPA census and MFU (tools/analysis/pcae_bench)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tools.analysis.pcae_bench.census import OpCensus, probe_sdpa, sdpa_label
from tools.analysis.pcae_bench.devices import mfu, peak_tflops


def test_census_counts_each_kind_of_sync_with_its_source_line():
    x = torch.arange(6.)
    census = OpCensus('cpu')
    with census.watch():
        x.sum().item()  # _local_scalar_dense
        int(x.max())  # _local_scalar_dense
        x[x > 2]  # boolean index: data-dependent size
        torch.nonzero(x)
        x.argmax(), torch.gather(x, 0, torch.tensor([1]))  # no sync
    summary = census.summary()
    assert summary['syncs'] == 4 and summary['syncs_emulated']
    sites = summary['sync_sites']
    assert all(s.startswith('1x ') and 'test_bench_census.py' in s for s in sites), sites
    assert sorted(s.split()[1] for s in sites) == ['_local_scalar_dense', '_local_scalar_dense',
                                                   'index', 'nonzero']


def test_census_leaves_out_torch_optimizers_host_step_counters():
    """AdamW reads its (host-side) step counters with .item(): no GPU sync, not counted."""
    lin = nn.Linear(4, 4)
    opt = torch.optim.AdamW(lin.parameters())
    census = OpCensus('cpu')
    with census.watch():
        lin(torch.randn(2, 4)).sum().backward()
        opt.step()
    assert census.num_syncs == 0


def test_census_names_the_sdpa_kernel_and_unfused_fallback():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q = torch.randn(1, 2, 5, 8)
    census = OpCensus('cpu')
    with census.watch():
        F.scaled_dot_product_attention(q, q, q)
        with sdpa_kernel([SDPBackend.MATH]):
            F.scaled_dot_product_attention(q, q, q)
    assert census.sdpa_kernels() == {'flash_cpu': 1, 'math': 1}
    assert sdpa_label({'flash': 24}) == 'flash'
    assert sdpa_label({'flash': 24, 'math': 2}) == 'flash 24 / math 2'
    assert sdpa_label({}) is None


def test_model_utils_issue_no_host_sync():
    """Masking, furthest sampling, token reduction and the EMA update: zero syncs."""
    from pcae_mm.models.teachers import EMATeacher
    from pcae_mm.models.utils import TokenReduction, furthest_point_sampling, random_masking
    student = nn.Linear(3, 3)
    teacher = EMATeacher(student)
    teacher.set_schedule(10)
    teacher.update_parameters(student)  # the host copy of `steps` is read once, here
    census = OpCensus('cpu')
    with census.watch():
        info = random_masking(2, 196, 0.75, 'cpu')
        furthest_point_sampling(info.ids_keep, info.ids_masked, 73, (14, 14))
        TokenReduction([0], 0.5, num_fixed=1).reduce(torch.randn(2, 1 + 147, 8),
                                                    info.ids_masked)
        teacher.update_parameters(student)
    assert census.num_syncs == 0, census.summary()['sync_sites']


def test_sdpa_probe_on_cpu():
    probe = probe_sdpa('cpu', torch.float32, (1, 2, 9, 8), repeats=1)
    assert probe['flash']['ok'] and probe['math']['ok']
    assert not probe['efficient']['ok'] and probe['efficient']['error']
    assert probe['default']['kernels'] == {'flash_cpu': 1}


@pytest.mark.parametrize('name, peak', [
    ('NVIDIA H200', 989.4), ('NVIDIA GH200 480GB', 989.4), ('NVIDIA H100 80GB HBM3', 989.4),
    ('NVIDIA H100 PCIe', 756.5), ('NVIDIA A100-SXM4-80GB', 312.0), ('NVIDIA L40S', 362.1),
    ('NVIDIA L4', 121.0), ('Some Future GPU', None)])
def test_peak_table_matches_the_most_specific_name(name, peak):
    assert peak_tflops(name, 'bf16') == peak


def test_mfu():
    assert peak_tflops('NVIDIA H200', 'none') is None  # fp32: no tensor-core bf16 peak
    assert mfu(989.4e12 * 0.5, 1.0, 989.4) == pytest.approx(0.5)
    assert mfu(None, 1.0, 989.4) is None and mfu(1e12, 1.0, None) is None
