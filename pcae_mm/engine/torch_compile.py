"""``torch.compile`` through mmengine's switch (``cfg.compile = True`` or
``dict(backend=..., mode=...)``) for every pcae_mm algorithm.

mmengine 0.10.7 compiles the model's whole ``train_step``: the data preprocessor, the loss
forward and ``optim_wrapper.update_params`` (backward and the optimizer step). With torch 2.x
that fails or recompiles every iteration:

* TorchDynamo cannot trace the optimizer step: its parameter groups are mmengine
  ``ConfigDict`` s (``InternalTorchDynamoError: 'UserDefinedDictVariable' object has no
  attribute 'items'``), and ~100 per-group AdamW updates would take minutes to compile;
* ``optim_wrapper.optim_context`` reads the wrapper's iteration counter (gradient
  accumulation), a Python int that changes every step: a guard failure and a recompilation
  at every iteration.

:class:`CompileForwardHook` gives the switch the meaning of the benchmark's ``--compile``:
the model's ``forward`` is compiled (student, teachers, decoder, heads and losses: the graph
that matters, one graph per method, tools/analysis/graph_breaks.py), its backward runs
compiled (AOTAutograd), and the data preprocessor, the loss scaler, gradient clipping, the
divergence guard and the optimizer step run eagerly as without compilation.
``tools/train.py`` adds the hook whenever the config asks for compilation
(:func:`pcae_mm.utils.runtime.prepare_compile`).
"""
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class CompileForwardHook(Hook):
    """Compile the model's ``forward`` instead of mmengine's whole ``train_step``.

    Args:
        **compile_kwargs: ``torch.compile`` arguments; default: the config's ``compile``
            (``True`` -> torch's defaults, a dict -> its items).
    """

    priority = 'VERY_HIGH'

    def __init__(self, **compile_kwargs) -> None:
        self.compile_kwargs = compile_kwargs

    def before_train(self, runner) -> None:
        model = runner.model
        options = dict(self.compile_kwargs)
        if not options:
            cfg = getattr(runner, 'cfg', None)
            options = cfg.get('compile') if cfg is not None else None
            options = dict(options) if isinstance(options, dict) else {}
        options.pop('target', None)  # FlexibleRunner's key
        # undo mmengine's compilation of the whole step (an instance attribute)
        for m in (model, getattr(model, 'module', None)):
            if m is not None and 'train_step' in vars(m):
                del m.train_step
        inner = model.module if is_model_wrapper(model) else model
        if getattr(inner, '_compiled_forward', False):
            return
        inner.forward = torch.compile(inner.forward, **options)
        inner._compiled_forward = True
        print_log(f'torch.compile: the model forward ({type(inner).__name__}), options '
                  f'{options or "torch defaults"}; data preprocessing and the optimizer step '
                  'stay eager', logger='current')
