"""summary.md and check.json of a gpu_check.sh run (standard library; torch only to read the
loss scale out of a checkpoint, when it imports).

``python tools/device/check_report.py WORK OUTDIR`` reads what the check left in its work
folder (``steps.jsonl``, ``meta.json``, ``logs/*.json``, the Runner work dirs under ``runs/``)
and writes ``OUTDIR/summary.md`` (README-ready) and ``OUTDIR/check.json`` (every figure).
"""
import glob
import json
import os
import os.path as osp
import re
import statistics
import sys
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from summarize import _fmt, compile_table, train_table  # noqa: E402

RUNS = ('pcae', 'mae', 'fsdp')


def _load(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _lines(path: str) -> List[str]:
    try:
        with open(path, errors='replace') as f:
            return f.read().splitlines()
    except OSError:
        return []


def read_steps(work: str) -> List[Dict]:
    steps = []
    for line in _lines(osp.join(work, 'steps.jsonl')):
        try:
            steps.append(json.loads(line))
        except ValueError:
            continue
    return steps


def read_scalars(run_dir: str) -> List[List[Dict]]:
    """Per launch (oldest first), the training records of ``vis_data/scalars.json``."""
    launches = []
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))):
        records = []
        for line in _lines(path):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if 'loss' in rec and 'time' in rec:
                records.append(rec)
        launches.append(records)
    return launches


def loss_scale(path: str) -> Optional[float]:
    """The dynamic loss scale saved in a checkpoint (None without AMP or without torch)."""
    try:
        import torch
        ckpt = torch.load(path, map_location='cpu', mmap=True, weights_only=False)
    except Exception:  # noqa: BLE001 - a report never fails on one figure
        return None
    scaler = (ckpt.get('optimizer') or {}).get('loss_scaler') or {}
    return float(scaler['scale']) if 'scale' in scaler else None


def summarize_run(run_dir: str, batch_size: int) -> Dict:
    """Time vs data_time per iteration, loss, memory, resume and checkpoints of one run."""
    launches = read_scalars(run_dir)
    records = [r for launch in launches for r in launch]
    out = dict(launches=len(launches), iterations=len(records))
    if records:
        times = [r['time'] for r in records[1:]] or [records[0]['time']]  # 1st: start-up
        data = [r['data_time'] for r in records[1:]] or [records[0]['data_time']]
        med_t, med_d = statistics.median(times), statistics.median(data)
        losses = [r['loss'] for r in records]
        out.update(
            first_iter_s=records[0]['time'], median_time_s=med_t, median_data_time_s=med_d,
            data_share=med_d / med_t if med_t else None,
            images_per_s=batch_size / med_t if med_t else None,
            loss_first=losses[0], loss_last=losses[-1],
            loss_finite=all(isinstance(v, (int, float)) and v == v and abs(v) != float('inf')
                            for v in losses),
            peak_memory_mib=max((r['memory'] for r in records if 'memory' in r), default=None),
            last_iter=records[-1].get('iter'), last_epoch=records[-1].get('epoch'),
            per_launch_iters=[len(l) for l in launches])
    logs = [l for p in sorted(glob.glob(osp.join(run_dir, '*', '*.log'))) for l in _lines(p)]
    resumed = [l.split('resumed ', 1)[1] for l in logs if 'resumed epoch:' in l]
    out['resumed_from'] = resumed[-1] if resumed else None
    out['fsdp_units'] = next((l.split('FSDP: ', 1)[1] for l in logs if 'FSDP: ' in l), None)
    ckpts = sorted(glob.glob(osp.join(run_dir, 'epoch_*.pth')),
                   key=lambda p: int(re.findall(r'\d+', osp.basename(p))[0]))
    out['checkpoints'] = {osp.basename(p): round(osp.getsize(p) / 2**20, 1) for p in ckpts}
    out['loss_scale'] = loss_scale(ckpts[-1]) if ckpts else None
    return out


def _pred_index(work: str) -> Dict[str, Dict]:
    """Memory predictions by (set, config name)."""
    index = {}
    for path in glob.glob(osp.join(work, 'logs', 'memory_*.json')):
        data = _load(path) or {}
        for row in data.get('rows', []):
            index[(row.get('set'), row.get('name'))] = row
    return index


def memory_rows(result: Dict, preds: Dict) -> List[Dict]:
    rows = []
    for r in (result.get('benchmark') or {}).get('train', []):
        p = preds.get(('bench', r['name']))
        rows.append(dict(what=f"benchmark {r['name']}", measured_mib=r.get('peak_memory_mb'),
                         predicted_mib=p and p.get('peak_mib')))
    meta = result['meta']
    for name in RUNS:
        run = result['runs'].get(name)
        if not run:
            continue
        cfg = meta.get(f'{name}_config' if name != 'fsdp' else 'fsdp_config', '')
        key = ('fsdp' if name == 'fsdp' else 'runner',
               osp.splitext(osp.basename(cfg))[0])
        p = preds.get(key)
        rows.append(dict(what=f'Runner {name}', measured_mib=run.get('peak_memory_mib'),
                         predicted_mib=p and p.get('peak_mib')))
    for row in rows:
        m, p = row['measured_mib'], row['predicted_mib']
        row['error'] = (p - m) / m if m and p else None
    return rows


def build(work: str) -> Dict:
    meta = _load(osp.join(work, 'meta.json')) or {}
    result = dict(meta=meta, steps=read_steps(work), runs={})
    result['benchmark'] = _load(osp.join(work, 'logs', 'benchmark.json'))
    result['compile'] = _load(osp.join(work, 'logs', 'compile.json'))
    result['data_only'] = _load(osp.join(work, 'logs', 'data_only.json'))
    result['checkpoint'] = _load(osp.join(work, 'logs', 'checkpoint.json'))
    for name in RUNS:
        run_dir = osp.join(work, 'runs', name)
        if osp.isdir(run_dir):
            bs = meta.get('fsdp_batch_size' if name == 'fsdp' else 'batch_size', 1)
            result['runs'][name] = summarize_run(run_dir, bs)
    result['memory'] = memory_rows(result, _pred_index(work))
    return result


def render(result: Dict) -> str:
    meta = result['meta']
    env = meta.get('environment', '')
    lines = [f"### GPU check ({meta.get('device')}{', tiny CPU dry run' if meta.get('tiny') else ''})",
             '', env, '', '| step | status | seconds | cap | note |', '|---|---|---|---|---|']
    for s in result['steps']:
        lines.append(f"| {s['name']} | {s['status']} | {s['seconds']} | {s['cap']} | "
                     f"{s.get('note', '')} |")
    lines.append('')
    bench = result.get('benchmark')
    if bench and bench.get('train'):
        lines += [f"Training step, {bench['meta'].get('amp')} autocast, batch "
                  f"{bench['meta'].get('batch_size')} (benchmark.py):", '']
        lines += train_table(bench['train']) + ['']
    if result['runs']:
        lines += [f"Real Runner (tools/train.py), {meta.get('images')} JPEGs of "
                  f"{meta.get('image_px')} px, {meta.get('workers')} workers; time / data_time: "
                  'median over iterations after the first (log window 1):', '',
                  '| run | iters (per launch) | resumed from | loss first -> last | s/iter | '
                  'data_time s | data share | img/s | first iter s | peak mem MiB (log) | '
                  'loss scale | checkpoints MiB |', '|---|---|---|---|---|---|---|---|'
                  '---|---|---|---|']
        for name, r in result['runs'].items():
            lines.append('| ' + ' | '.join([
                name, f"{r['iterations']} ({'+'.join(map(str, r.get('per_launch_iters', [])))})",
                str(r.get('resumed_from') or '-'),
                f"{_fmt(r.get('loss_first'), '{:.4f}')} -> {_fmt(r.get('loss_last'), '{:.4f}')}"
                + ('' if r.get('loss_finite', True) else ' (NON-FINITE)'),
                _fmt(r.get('median_time_s'), '{:.3f}'), _fmt(r.get('median_data_time_s'), '{:.3f}'),
                _fmt(r.get('data_share'), '{:.0%}'), _fmt(r.get('images_per_s'), '{:.1f}'),
                _fmt(r.get('first_iter_s'), '{:.1f}'), _fmt(r.get('peak_memory_mib'), '{}'),
                _fmt(r.get('loss_scale'), '{:g}'),
                ', '.join(f'{k}: {v:g}' for k, v in r.get('checkpoints', {}).items()) or '-'
            ]) + ' |')
        fsdp = result['runs'].get('fsdp', {})
        if fsdp.get('fsdp_units'):
            lines += ['', f"FSDP: {fsdp['fsdp_units']}"]
        lines.append('')
    mem = [m for m in result['memory'] if m['measured_mib'] or m['predicted_mib']]
    if mem:
        lines += ['Peak memory, predicted (tools/analysis/memory_estimate.py) vs measured:', '',
                  '| what | predicted MiB | measured MiB | error |', '|---|---|---|---|']
        for m in mem:
            lines.append(f"| {m['what']} | {_fmt(m['predicted_mib'], '{:.0f}')} | "
                         f"{_fmt(m['measured_mib'], '{:.0f}')} | {_fmt(m['error'], '{:+.1%}')} |")
        lines.append('')
    ckpt = result.get('checkpoint')
    if ckpt:
        lines += ['Checkpoint with AdamW state (tools/analysis/checkpoint_size.py: written with '
                  'fsync, read back; while the GPU steps ran):', '',
                  '| config | predicted MiB | file MiB | save s | MiB/s | load s |',
                  '|---|---|---|---|---|---|']
        for c in ckpt:
            lines.append(f"| {c['name']} | {c['predicted_bytes'] / 2**20:.0f} | "
                         f"{_fmt(c.get('file_bytes') and c['file_bytes'] / 2**20, '{:.0f}')} | "
                         f"{_fmt(c.get('save_seconds'), '{}')} | "
                         f"{_fmt(c.get('save_mib_per_s'), '{}')} | "
                         f"{_fmt(c.get('load_seconds'), '{}')} |")
        lines.append('')
    comp = result.get('compile')
    if comp and comp.get('train') and bench:
        lines += ['torch.compile (model forward) vs eager, same batch:', '']
        lines += compile_table(bench.get('train', []), comp['train']) + ['']
    if result.get('data_only'):
        lines += ['Input pipeline alone (benchmark.py --data-only): see check.json / '
                  'logs.tar.gz', '']
    return '\n'.join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print('usage: python tools/device/check_report.py WORK OUTDIR', file=sys.stderr)
        return 2
    work, out = argv
    result = build(work)
    env = _lines(osp.join(work, 'logs', 'environment.log'))
    result['meta']['environment'] = ' / '.join(l for l in env if l.startswith(('python', 'GPU')))
    text = render(result)
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join(out, 'check.json'), 'w') as f:
        json.dump(result, f, indent=1, default=str)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
