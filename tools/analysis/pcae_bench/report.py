"""Tables of benchmark results: ratios to the baseline, console text, Markdown, JSON."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

TRAIN_COLUMNS: Sequence[Tuple[str, str, str]] = (
    # (key, header, format)
    ('name', 'config', '{}'),
    ('step_time_s', 'step (s)', '{:.4g}'),
    ('step_time_spread', 'spread', '{:.0%}'),
    ('images_per_s', 'img/s', '{:.3g}'),
    ('peak_memory_mb', 'peak mem (MiB)', '{:.0f}'),
    ('step_memory_mb', 'step mem (MiB)', '{:.0f}'),
    ('train_gflops_per_image', 'train GFLOPs/img', '{:.3g}'),
    ('train_tflops_per_s', 'TFLOP/s', '{:.3g}'),
    ('mfu', 'MFU', '{:.1%}'),
    ('syncs_per_step', 'syncs/step', '{}'),
    ('sdpa', 'SDPA', '{}'),
    ('time_ratio', 'time / MAE', '{:.2f}'),
    ('memory_ratio', 'mem / MAE', '{:.2f}'),
    ('step_memory_ratio', 'step mem / MAE', '{:.2f}'),
    ('flops_ratio', 'FLOPs / MAE', '{:.2f}'),
)
PTR_COLUMNS: Sequence[Tuple[str, str, str]] = (
    ('drop_ratio', 'drop', '{:.1f}'),
    ('token_counts', 'patch tokens', '{}'),
    ('gmacs', 'GMACs', '{:.2f}'),
    ('paper_gmacs', 'paper GMACs', '{:.2f}'),
    ('gmacs_error', 'MACs err', '{:+.1%}'),
    ('infer_images_per_s', 'infer img/s', '{:.3g}'),
    ('infer_speedup', 'infer x drop0', '{:.2f}'),
    ('train_images_per_s', 'fine-tune img/s', '{:.3g}'),
    ('train_speedup', 'fine-tune x drop0', '{:.2f}'),
    ('paper_throughput', 'paper img/s', '{}'),
)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or not b else a / b


def add_train_ratios(rows: List[Dict], baseline: str) -> None:
    """Add ``time_ratio``, ``memory_ratio``, ``step_memory_ratio`` and ``flops_ratio``
    relative to the row ``baseline``."""
    base = next((r for r in rows if r['name'] == baseline), None)
    if base is None:
        raise KeyError(f'baseline {baseline!r} is not among the results')
    for r in rows:
        r['time_ratio'] = _ratio(r['step_time_s'], base['step_time_s'])
        r['memory_ratio'] = _ratio(r.get('peak_memory_mb'), base.get('peak_memory_mb'))
        r['step_memory_ratio'] = _ratio(r.get('step_memory_mb'), base.get('step_memory_mb'))
        r['flops_ratio'] = _ratio(r.get('train_gflops_per_image'),
                                  base.get('train_gflops_per_image'))


def add_ptr_speedups(rows: List[Dict]) -> None:
    """Add throughput relative to the drop-0 row (when there is one)."""
    base = next((r for r in rows if r['drop_ratio'] == 0), None)
    for r in rows:
        r['infer_speedup'] = _ratio(r.get('infer_images_per_s'),
                                    base and base.get('infer_images_per_s'))
        r['train_speedup'] = _ratio(r.get('train_images_per_s'),
                                    base and base.get('train_images_per_s'))


def _cell(row: Dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return '-'
    if isinstance(value, list):
        return '/'.join(str(v) for v in value)
    return fmt.format(value)


def table_rows(rows: List[Dict], columns) -> Tuple[List[str], List[List[str]]]:
    """Header and formatted cells, dropping columns that are empty in every row."""
    columns = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    return [c[1] for c in columns], [[_cell(r, k, f) for k, _, f in columns] for r in rows]


def markdown_table(rows: List[Dict], columns) -> str:
    header, cells = table_rows(rows, columns)
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(c) + ' |' for c in cells]
    return '\n'.join(lines)


def text_table(rows: List[Dict], columns) -> str:
    header, cells = table_rows(rows, columns)
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    fmt = lambda cs: '  '.join(c.rjust(w) if i else c.ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(cs, widths)))
    return '\n'.join([fmt(header), fmt(['-' * w for w in widths])] + [fmt(c) for c in cells])


def sdpa_probe_line(probe: Dict) -> str:
    """One line: each SDPA backend's forward + backward time alone, and torch's own pick."""
    default = probe.get('default', {})
    cells = [f"{name} {r['ms']:g} ms" if r.get('ok') else f'{name} -'
             for name, r in probe.items() if name != 'default']
    shape = ' x '.join(str(d) for d in default.get('shape', []))
    picked = ', '.join(default.get('kernels', {})) or '?'
    return (f"SDPA backends alone (fwd + bwd, {shape}, {default.get('dtype', '')}): "
            f"{', '.join(cells)}; torch picks: {picked}")


def render(result: Dict, markdown: bool) -> str:
    """The whole report (setup, train table, PTR table, target checks) as text or Markdown."""
    table = markdown_table if markdown else text_table
    meta = result['meta']
    out = []
    out.append(('## ' if markdown else '') + 'Benchmark')
    out.append(f"device: {meta['device']} | torch {meta['torch']} | amp: {meta['amp']} | "
               f"batch {meta['batch_size']} | warm-up {meta['warmup']} + {meta['steps']} timed "
               f"steps x {meta['rounds']} round(s), median | memory: {meta['memory_method']}")
    if meta.get('sdpa_probe'):
        out.append(sdpa_probe_line(meta['sdpa_probe']))
    if meta.get('peak_tflops'):
        out.append(f"MFU against {meta['peak_tflops']:g} TFLOP/s (dense {meta['amp']} peak)")
    if meta.get('syncs_emulated'):
        out.append('syncs/step: host-device syncs a GPU run of the same step would have '
                   '(emulated on CPU; the optimizer step excluded)')
    if result.get('train'):
        out += ['', ('### ' if markdown else '') + f"Training step (ratios to {meta['baseline']})",
                '', table(result['train'], TRAIN_COLUMNS)]
    if result.get('ptr'):
        ptr_meta = result['ptr_meta']
        out += ['', ('### ' if markdown else '') +
                f"PTR fine-tune / inference (locations {ptr_meta['locations']}, batch "
                f"{ptr_meta['batch_size']})", '', table(result['ptr'], PTR_COLUMNS)]
    if result.get('targets'):
        out += ['', ('### ' if markdown else '') + 'Targets', '']
        for t in result['targets']:
            mark = {True: 'met', False: 'MISSED', None: 'n/a'}[t['met']]
            value = '-' if t['value'] is None else f"{t['value']:.3f}"
            out.append(f"{'- ' if markdown else ''}{t['target']}: {value} -> {mark}")
    notes = [(r['name'], n) for r in result.get('train', []) for n in r.get('notes', [])]
    notes += [(r['name'], 'sync: ' + site) for r in result.get('train', [])
              for site in r.get('sync_sites') or []]
    notes += [(r['name'], 'CUDA sync debug: ' + site) for r in result.get('train', [])
              for site in r.get('cuda_sync_sites') or []]
    if notes:
        out += ['', ('### ' if markdown else '') + 'Notes', '']
        out += [f"{'- ' if markdown else ''}{name}: {note}" for name, note in notes]
    if result.get('errors'):
        out += ['', ('### ' if markdown else '') + 'Not measured', '']
        out += [f"{'- ' if markdown else ''}{e['config']}: {e['error']}" for e in result['errors']]
    return '\n'.join(out) + '\n'


def write_outputs(result: Dict, out_dir: str, stem: str = 'benchmark') -> Dict[str, str]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(json=osp.join(out_dir, stem + '.json'), markdown=osp.join(out_dir, stem + '.md'))
    with open(paths['json'], 'w') as f:
        json.dump(result, f, indent=2, default=str)
    with open(paths['markdown'], 'w') as f:
        f.write(render(result, markdown=True))
    return paths
