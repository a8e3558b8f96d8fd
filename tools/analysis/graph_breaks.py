"""torch.compile graph breaks of each part of every method's training step.

One eager training forward of the config records the first call of each part the algorithm
calls: the student encoder (``backbone``), the decoder (``neck``), the head's ``loss``, the
teacher's forward methods (``teacher.forward*``; MR-MAE's frozen ``teachers``) and the mimic
heads. Each recorded call is then traced again by TorchDynamo (``torch._dynamo.explain``, no
compilation) with the same arguments and grad mode; the whole ``loss`` forward of the algorithm
is traced too. Printed per part: graphs, graph breaks and each break's reason with the line
that caused it.

    python -m tools.analysis.graph_breaks                  # every method's tiny config
    python -m tools.analysis.graph_breaks CONFIG ... --json breaks.json

Graph breaks do not depend on the model's size (the same code runs), so the tiny configs
answer for the ViT-B / ViT-L recipes; a ViT-B config works too (slower to build).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if __package__:
    from .pcae_bench import builder
else:  # python tools/analysis/graph_breaks.py
    sys.path[:0] = [osp.dirname(osp.abspath(__file__)), ROOT]
    from pcae_bench import builder
#: every method's tiny CPU config (the parts and the code are those of the full recipes)
METHODS_SHOWN = ('mae', 'pcae', 'pr_mim', 'sdae', 'mr_mae')
#: Methods recorded on a part: its forward (through __call__) plus these, when defined.
METHODS = ('loss', )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='configs (default: every tiny config)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--json', help='write the result to this JSON file')
    return parser.parse_args(argv)


class CallRecorder:
    """Record the first call of every recorded method of the algorithm's parts.

    Parts: the algorithm's direct children and the members of child ``ModuleDict`` s
    (MR-MAE's ``teachers`` / mimic heads), except the data preprocessor. Recorded methods:
    ``forward`` (by a forward pre-hook), every ``forward_*`` method the part's class defines
    and ``loss``.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls: Dict[str, Tuple] = {}
        self._undo = []
        for name, part in self._parts(model):
            self._undo.append(part.register_forward_pre_hook(self._pre_hook(name),
                                                             with_kwargs=True))
            names = {m for m in dir(type(part)) if m.startswith('forward_')} | set(METHODS)
            for method in sorted(names):
                if callable(getattr(type(part), method, None)):
                    self._wrap(part, f'{name}.{method}', method)

    @staticmethod
    def _parts(model) -> List[Tuple[str, torch.nn.Module]]:
        parts = []
        for name, child in model.named_children():
            if name == 'data_preprocessor':
                continue
            if isinstance(child, torch.nn.ModuleDict):
                parts += [(f'{name}.{k}', m) for k, m in child.items()]
            else:
                parts.append((name, child))
        return parts

    def _pre_hook(self, name: str):
        def hook(module, args, kwargs):
            self.calls.setdefault(f'{name}.forward', (module.forward, args, kwargs,
                                                     torch.is_grad_enabled()))
        return hook

    def _wrap(self, part, key: str, method: str) -> None:
        original = getattr(part, method)

        def wrapped(*args, **kwargs):
            self.calls.setdefault(key, (original, args, kwargs, torch.is_grad_enabled()))
            return original(*args, **kwargs)

        setattr(part, method, wrapped)
        self._undo.append(_Restore(part, method))

    def remove(self) -> None:
        for handle in self._undo:
            handle.remove()


class _Restore:

    def __init__(self, obj, attr: str) -> None:
        self.obj, self.attr = obj, attr

    def remove(self) -> None:
        self.obj.__dict__.pop(self.attr, None)


def _reason(br) -> Dict:
    frames = [f for f in br.user_stack if ROOT in f.filename] or list(br.user_stack)
    where = (f'{osp.relpath(frames[-1].filename, ROOT)}:{frames[-1].lineno}'
             if frames else '?')
    return dict(reason=br.reason.strip().splitlines()[0][:300], where=where)


def explain(fn, args, kwargs, grad: bool) -> Dict:
    torch._dynamo.reset()
    with torch.set_grad_enabled(grad):
        out = torch._dynamo.explain(fn)(*args, **kwargs)
    reasons, seen = [], set()
    for br in out.break_reasons:
        r = _reason(br)
        if (r['reason'], r['where']) not in seen:
            seen.add((r['reason'], r['where']))
            reasons.append(r)
    return dict(graphs=out.graph_count, breaks=out.graph_break_count, ops=out.op_count,
                reasons=reasons)


def prepare(cfg, batch_size: int):
    """The built model in train mode (hooks' start-of-training set-up done) and a batch."""
    model = builder.build_model(cfg, torch.device('cpu'))
    model.train()
    builder.HookDriver(cfg, model).before_iter()  # e.g. the EMA schedule, PR-MIM's progress
    data = builder.make_batch(batch_size, builder.infer_img_size(model), 10)
    batch = model.data_preprocessor(data, True)
    return model, batch


def analyse(spec: str, batch_size: int = 2) -> Dict:
    """Graph breaks of every recorded part of ``spec``'s training forward, and of the whole."""
    import tempfile
    cfg = builder.load_config(spec)
    with tempfile.TemporaryDirectory() as tmp:
        builder.random_teacher_checkpoints(cfg, tmp)
        model, batch = prepare(cfg, batch_size)
    recorder = CallRecorder(model)
    torch.manual_seed(0)
    model(**batch, mode='loss')
    recorder.remove()
    parts = {}
    for key, (fn, args, kwargs, grad) in recorder.calls.items():
        try:
            parts[key] = explain(fn, args, kwargs, grad)
        except Exception as e:  # noqa: BLE001 - a part that cannot be traced is reported
            parts[key] = dict(graphs=None, breaks=None, error=f'{type(e).__name__}: {e}'[:300])
    parts['(whole loss forward)'] = explain(
        lambda inputs, samples: model(inputs, samples, mode='loss'),
        (batch['inputs'], batch['data_samples']), {}, True)
    torch._dynamo.reset()
    return dict(config=spec, name=builder.config_name(spec), algorithm=type(model).__name__,
                parts=parts)


def render(results: List[Dict]) -> str:
    lines = ['| config | algorithm | part | graphs | breaks | reasons |',
             '|---|---|---|---|---|---|']
    for res in results:
        for part, r in res['parts'].items():
            why = '; '.join(f"{x['reason']} ({x['where']})" for x in r.get('reasons', [])) or \
                r.get('error', '')
            lines.append(f"| {res['name']} | {res['algorithm']} | {part} | {r['graphs']} | "
                         f"{r['breaks']} | {why} |")
    return '\n'.join(lines)


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    if not args.configs:
        from tools.tiny_data.configs import tiny_config
    specs = args.configs or [tiny_config(m) for m in METHODS_SHOWN]
    builder.register_all()
    results = []
    for spec in specs:
        try:
            results.append(analyse(spec, args.batch_size))
        except Exception as e:  # noqa: BLE001 - a config that does not run is reported
            results.append(dict(config=spec, name=builder.config_name(spec), algorithm='?',
                                parts={'(eager forward)': dict(
                                    graphs=None, breaks=None,
                                    error=f'{type(e).__name__}: {e}'[:300])}))
    print(render(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
