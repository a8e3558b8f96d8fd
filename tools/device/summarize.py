"""README-ready tables from a gpu_bench.sh output folder (standard library only).

``python tools/device/summarize.py OUTDIR`` reads ``benchmark.json`` (and ``compile.json`` when
the torch.compile phase ran) and writes ``OUTDIR/summary.md``: the training-step table with MFU,
host syncs and SDPA kernels, the SDPA backend probe, PTR throughput, eager vs compiled.
"""
import json
import os.path as osp
import sys


def _fmt(value, fmt: str) -> str:
    return '-' if value is None else fmt.format(value)


def _rate(value) -> str:
    """Throughputs: whole numbers from 100 up, 3 significant digits below (CPU dry runs)."""
    return '-' if value is None else f'{value:.0f}' if value >= 100 else f'{value:.3g}'


def train_table(rows) -> list:
    out = ['| config | batch | step (ms) | img/s | peak mem (GiB) | train GFLOPs/img | TFLOP/s '
           '| MFU | syncs/step | SDPA | time / MAE | FLOPs / MAE |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        mem = None if r.get('peak_memory_mb') is None else r['peak_memory_mb'] / 1024
        out.append('| ' + ' | '.join([
            r['name'], str(r['batch_size']), _fmt(r['step_time_s'] * 1e3, '{:.1f}'),
            _rate(r.get('images_per_s')), _fmt(mem, '{:.1f}'),
            _fmt(r.get('train_gflops_per_image'), '{:.1f}'),
            _rate(r.get('train_tflops_per_s')), _fmt(r.get('mfu'), '{:.1%}'),
            _fmt(r.get('syncs_per_step'), '{}'), r.get('sdpa') or '-',
            _fmt(r.get('time_ratio'), '{:.2f}'), _fmt(r.get('flops_ratio'), '{:.2f}')
        ]) + ' |')
    return out


def ptr_table(rows) -> list:
    out = ['| drop | patch tokens | GMACs | inference img/s | x drop 0 | fine-tune img/s | '
           'x drop 0 | paper img/s |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
        out.append('| ' + ' | '.join([
            f"{r['drop_ratio']:g}", '/'.join(str(c) for c in r.get('token_counts') or []),
            _fmt(r.get('gmacs'), '{:.2f}'), _rate(r.get('infer_images_per_s')),
            _fmt(r.get('infer_speedup'), '{:.2f}'), _rate(r.get('train_images_per_s')),
            _fmt(r.get('train_speedup'), '{:.2f}'), _fmt(r.get('paper_throughput'), '{}')
        ]) + ' |')
    return out


def compile_table(eager_rows, compiled_rows) -> list:
    eager = {r['name']: r for r in eager_rows}
    out = ['| config | eager step (ms) | compiled step (ms) | speed-up | compiled peak mem (GiB) |',
           '|---|---|---|---|---|']
    for r in compiled_rows:
        e = eager.get(r['name'])
        eager_ms = None if e is None else e['step_time_s'] * 1e3
        ms = r['step_time_s'] * 1e3
        mem = None if r.get('peak_memory_mb') is None else r['peak_memory_mb'] / 1024
        out.append(f"| {r['name']} | {_fmt(eager_ms, '{:.1f}')} | {ms:.1f} | "
                   f"{_fmt(None if eager_ms is None else eager_ms / ms, '{:.2f}x')} | "
                   f"{_fmt(mem, '{:.1f}')} |")
    return out


def probe_line(probe) -> str:
    default = probe.get('default', {})
    cells = [f"{k} {v['ms']:g} ms" if v.get('ok') else f'{k}: cannot run'
             for k, v in probe.items() if k != 'default']
    shape = ' x '.join(str(d) for d in default.get('shape', []))
    return (f"SDPA backends alone, forward + backward of one {shape} {default.get('dtype', '')} "
            f"attention: {', '.join(cells)}; torch's own pick: "
            f"{', '.join(default.get('kernels', {})) or '?'}.")


def summarize(out_dir: str) -> str:
    path = osp.join(out_dir, 'benchmark.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing: the benchmark did not get to write it')
    res = json.load(open(path))
    meta = res['meta']
    lines = [f"### {meta['device']}: training step, bf16 autocast (amp {meta['amp']})", '',
             f"torch {meta['torch']}" + (f", CUDA {meta['cuda']}" if meta.get('cuda') else '') +
             f", {meta['date']}; median of {meta['steps']} steps after {meta['warmup']} "
             f"warm-up steps x {meta['rounds']} round(s); peak memory: {meta['memory_method']}" +
             (f"; MFU against {meta['peak_tflops']:g} TFLOP/s (dense bf16 peak)"
              if meta.get('peak_tflops') else '') + '.', '']
    if res.get('train'):
        lines += train_table(res['train']) + ['']
    if meta.get('sdpa_probe'):
        lines += [probe_line(meta['sdpa_probe']), '']
    if res.get('ptr'):
        pm = res.get('ptr_meta', {})
        lines += [f"PTR fine-tune / inference (drop after blocks {pm.get('locations')}, batch "
                  f"{pm.get('batch_size')}):", ''] + ptr_table(res['ptr']) + ['']
    elif res.get('train'):
        lines += ['PTR section: not reached (see gpu_bench.log).', '']
    cpath = osp.join(out_dir, 'compile.json')
    if osp.isfile(cpath):
        comp = json.load(open(cpath))
        lines += ['torch.compile (model forward) vs eager, same batch:', ''] + compile_table(
            res.get('train', []), comp.get('train', [])) + ['']
    notes = [f"- {r['name']}: {n}" for r in res.get('train', []) for n in r.get('notes', [])]
    notes += [f"- {r['name']}: sync {s}" for r in res.get('train', [])
              for s in r.get('sync_sites') or []]
    notes += [f"- {r['name']}: {r['cuda_syncs_per_step']} synchronising CUDA call(s) per step "
              f"(torch.cuda sync debug mode): {'; '.join(r.get('cuda_sync_sites') or [])}"
              for r in res.get('train', []) if r.get('cuda_syncs_per_step')]
    notes += [f"- not measured: {e['config']}: {e['error']}" for e in res.get('errors', [])]
    if notes:
        lines += ['Notes:', ''] + notes + ['']
    text = '\n'.join(lines)
    with open(osp.join(out_dir, 'summary.md'), 'w') as f:
        f.write(text)
    return text


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python tools/device/summarize.py OUTDIR')
    print(summarize(sys.argv[1]))
