"""Check a config before any work (issue 25): unknown keys are errors, at start.

mmengine builds each part of a run when it first needs it, and an unknown key surfaces then:
a typo in ``model.backbone`` as a raw ``TypeError``, a typo in ``default_hooks.checkpoint``
(``max_keep_ckpt``) only at the first save, after a whole epoch, and a top-level typo
(``--cfg-options randomnes.seed=1``) never (the seed silently stays). :func:`check_config`
looks at the whole config at once, before the Runner exists:

* **Top-level keys** given on the command line must be read by mmengine's Runner (or
  FlexibleRunner) or be defined by the config's own files (a key a config file defines is that
  config's variable; a key only ``--cfg-options`` sets and nobody reads is a typo).
* **Typed dicts** (``dict(type=...)``: the model and every part nested in it, hooks, datasets,
  their pipelines and samplers, the optimizer wrapper and optimizer, parameter schedulers,
  loops, evaluators, visualiser, strategy): the class is looked up in the registry of the
  config's ``default_scope`` (``_scope_`` and ``mmdet.`` / ``mmpretrain.`` prefixes respected)
  and every key must be an argument of its ``__init__``. A class taking ``**kwargs`` is
  followed up its MRO when it hands them to ``super().__init__`` (keys it ``kwargs.pop``s
  count too); a truly open-ended signature is not guessed at (skipped), and neither is a type
  the registry does not know (the build names it). ``*_cfg`` arguments (``norm_cfg``,
  ``init_cfg``, ...) are consumed by helper builders, not constructors: not checked.
* **Untyped runner dicts** (``randomness``, ``env_cfg``, ``auto_scale_lr``, the dataloaders,
  ``train_cfg`` / ``val_cfg`` / ``test_cfg`` without ``type``) against what mmengine reads.
* **Values** whose wrong type or sign only fails late (a negative batch size, a learning rate
  given as a string, a ``data_root`` that is not a path).

Each problem names the key, the closest valid name (``difflib``) and the config file; all are
reported at once (:class:`ConfigCheckError`). ``tools/train.py`` / ``tools/test.py`` run it;
``--no-config-check`` skips it.
"""
import ast
import difflib
import inspect
import re
from argparse import ArgumentParser, Namespace
from importlib import import_module
from typing import Dict, Iterable, List, Optional, Set

from mmengine.config import DictAction


class ConfigCheckError(ValueError):
    """The config has keys nobody reads or values that cannot work."""


class ScopeImportError(ConfigCheckError):
    """A toolbox the config names (its default scope, a ``_scope_``) cannot import its
    modules, so its types cannot be checked (nor built)."""


# ------------------------------------------------------------------------------------------
# --cfg-options: dict(...) values and clear parse errors
# ------------------------------------------------------------------------------------------
class _Unparsable(Exception):
    pass


def _literal(node: ast.AST):
    """A Python literal with ``dict(k=v)`` calls and bare words (strings, as mmengine reads
    them: ``type=PCAE`` is ``'PCAE'``, ``mmpretrain.MAE`` is ``'mmpretrain.MAE'``)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        raise _Unparsable
    if isinstance(node, ast.Name):
        return {'True': True, 'False': False, 'None': None}.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        return f'{_literal(node.value)}.{node.attr}'
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _Unparsable
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == 'dict' and not node.args and all(k.arg for k in node.keywords):
        return {k.arg: _literal(k.value) for k in node.keywords}
    raise _Unparsable


def parse_cfg_option_value(text: str):
    """One ``--cfg-options`` value, as mmengine's :class:`~mmengine.config.DictAction` parses
    it, plus ``dict(...)`` / ``{...}`` values (mmengine keeps ``dict(max_norm=3.0)`` as a
    string and recurses forever on ``dict(a=1,b=2)``).

    Raises:
        ValueError: the value cannot be parsed (names it and the syntax).
    """
    if re.search(r'\bdict\s*\(|\{', text):
        try:
            value = _literal(ast.parse(text.strip(), mode='eval').body)
        except (SyntaxError, _Unparsable, RecursionError):
            raise ValueError(
                f'cannot parse the value {text!r}: write a dict as dict(key=value, ...) or '
                "{'key': value} with Python literals (quote it for the shell: "
                "\"KEY=dict(type='X', n=1)\")") from None
        if isinstance(value, tuple) and not text.strip().startswith('('):
            value = list(value)  # KEY=a,b is a list in mmengine's syntax
        return value
    try:
        return DictAction._parse_iterable(text)
    except RecursionError:
        raise ValueError(
            f'cannot parse the value {text!r}: parentheses may only open the value (a tuple: '
            '(1,2)); a call other than dict(...) is not a value') from None
    except AssertionError as e:  # mmengine's bracket check
        raise ValueError(f'cannot parse the value {text!r}: {e}') from None


class CfgOptionsAction(DictAction):
    """``--cfg-options KEY=VALUE ...`` (mmengine's syntax) that also takes ``dict(...)`` values
    and reports a malformed option as a usage error naming it, not a traceback."""

    def __call__(self, parser: ArgumentParser, namespace: Namespace, values,
                 option_string: Optional[str] = None) -> None:
        options = dict(getattr(namespace, self.dest, None) or {})
        for kv in values or ():
            if '=' not in kv:
                parser.error(f'{option_string or "--cfg-options"}: expected KEY=VALUE, got '
                             f'{kv!r} (e.g. train_dataloader.batch_size=64)')
            key, val = kv.split('=', maxsplit=1)
            if not key or key.startswith('.') or key.endswith('.') or '..' in key:
                parser.error(f'{option_string or "--cfg-options"}: malformed key {key!r} in '
                             f'{kv!r}')
            try:
                options[key] = parse_cfg_option_value(val)
            except ValueError as e:
                parser.error(f'{option_string or "--cfg-options"} {key}: {e}')
        setattr(namespace, self.dest, options)


# ------------------------------------------------------------------------------------------
# what a class accepts
# ------------------------------------------------------------------------------------------
_KW = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_accepted_cache: Dict[object, Optional[frozenset]] = {}


def _kwargs_sinks() -> Dict[type, List]:
    """Classes whose ``**kwargs`` go somewhere other than ``super().__init__``, and where."""
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import FlexibleRunner, Runner
    # CheckpointHook keeps **kwargs for runner.save_checkpoint(...) at the first save
    return {CheckpointHook: [Runner.save_checkpoint, FlexibleRunner.save_checkpoint]}


def _call_args(source: str, start: int) -> str:
    """The text between the parenthesis at ``start`` and its match."""
    depth = 0
    for i in range(start, len(source)):
        if source[i] == '(':
            depth += 1
        elif source[i] == ')':
            depth -= 1
            if depth == 0:
                return source[start + 1:i]
    return source[start + 1:]


def _kwargs_use(func, name: str):
    """(passed to a parent ``__init__``, keys read from it with pop/get/[...])"""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return False, set()
    passed = False
    for m in re.finditer(r'\.__init__\s*\(', source):
        if re.search(r'\*\*\s*' + re.escape(name) + r'\b', _call_args(source, m.end() - 1)):
            passed = True
    key = r"""\s*\(\s*['"](\w+)['"]"""
    read = set(re.findall(re.escape(name) + r'\s*\.\s*(?:pop|get|setdefault)' + key, source))
    read |= set(re.findall(re.escape(name) + r"""\s*\[\s*['"](\w+)['"]\s*\]""", source))
    return passed, read


def _params(func) -> tuple:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None, None
    names = {p.name for p in sig.parameters.values() if p.kind in _KW}
    var_kw = next((p.name for p in sig.parameters.values()
                   if p.kind == inspect.Parameter.VAR_KEYWORD), None)
    return names, var_kw


def accepted_keys(obj) -> Optional[frozenset]:
    """The keyword arguments ``obj`` (a class or a function) accepts; None when open-ended.

    A class's ``**kwargs`` are followed up the MRO when its ``__init__`` passes them to a
    parent ``__init__``; keys it pops from them count as accepted.
    """
    if obj in _accepted_cache:
        return _accepted_cache[obj]
    result: Optional[frozenset]
    if inspect.isclass(obj):
        names: Set[str] = set()
        sinks = _kwargs_sinks()
        result = None
        inits = [k for k in obj.__mro__ if '__init__' in vars(k)]
        for klass in inits:
            if klass is object:
                result = frozenset(names)
                break
            init = vars(klass)['__init__']
            params, var_kw = _params(init)
            if params is None:
                break  # a C constructor: not guessed
            names |= params - {'self'}
            if var_kw is None:
                result = frozenset(names)
                break
            if klass in sinks:
                for target in sinks[klass]:
                    names |= (_params(target)[0] or set()) - {'self'}
                result = frozenset(names)
                break
            passed, read = _kwargs_use(init, var_kw)
            names |= read
            if not passed:
                break  # open-ended
        else:
            result = frozenset(names)
    elif callable(obj):
        params, var_kw = _params(obj)
        result = None if params is None or var_kw is not None else frozenset(params)
    else:
        result = None
    _accepted_cache[obj] = result
    return result


_dict_arg_cache: Dict[tuple, object] = {}


def dict_arg_target(cls, arg: str):
    """The callable that ``cls.__init__`` (or a parent's) expands the argument ``arg`` into
    (``Target(..., **arg)``, the target a module-level name), or None."""
    import textwrap
    if (cls, arg) in _dict_arg_cache:
        return _dict_arg_cache[(cls, arg)]
    found = None
    for klass in getattr(cls, '__mro__', ()):
        init = vars(klass).get('__init__')
        if init is None or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        except (OSError, TypeError, SyntaxError, IndentationError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and any(
                    k.arg is None and isinstance(k.value, ast.Name) and k.value.id == arg
                    for k in node.keywords):
                target = getattr(init, '__globals__', {}).get(node.func.id)
                if callable(target):
                    found = target
                    break
        if found is not None:
            break
    _dict_arg_cache[(cls, arg)] = found
    return found


# ------------------------------------------------------------------------------------------
# registries
# ------------------------------------------------------------------------------------------
def _registry(name: str, scope: str):
    import mmengine.registry as root_mod
    root = getattr(root_mod, name)
    if scope and scope != 'mmengine':
        try:
            import_module(f'{scope}.registry')
        except ImportError:
            return root
        child = root._search_child(scope)
        if child is not None:
            _import_scope(child, scope)
            return child
    return root


def _import_scope(registry, scope: str) -> None:
    """Import the modules that fill ``registry`` of toolbox ``scope``; a toolbox that cannot
    import them is named (else every type of the config would read as unknown)."""
    try:
        registry.import_from_location()
    except ImportError as err:
        hint = ''
        if (getattr(err, 'name', None) or '').startswith('mmcv') or 'mmcv._ext' in str(err):
            hint = (f" {scope} needs mmcv's compiled ops, which this environment does not have "
                    "(yet): a first `bash tools/setup_env.sh` builds them in the background; "
                    "`bash tools/setup_env.sh --wait` waits for them, `--status` shows the "
                    "progress.")
        raise ScopeImportError(
            f"cannot check the config: {scope}'s {registry.name} modules do not import "
            f"({type(err).__name__}: {err}).{hint}") from err


def _lookup(registry_name: str, type_, scope: str):
    if not isinstance(type_, str):
        return type_ if callable(type_) else None
    try:
        return _registry(registry_name, scope).get(type_)
    except ScopeImportError:
        raise
    except Exception:  # noqa: BLE001 - unknown type: the build names it
        return None


def _type_is_certain(path: str) -> bool:
    """Whether the registry of a typed dict at ``path`` is known for sure: the sections'
    own entries and the model's direct parts (deeper model parts may belong to other
    registries, e.g. mmdet's TASK_UTILS)."""
    return not (path.startswith('model.') and path.count('.') >= 2)


def _root_registry_names() -> list:
    """The names of mmengine's root registries (``MODELS``, ``HOOKS``, ``TASK_UTILS``, ...)."""
    import mmengine.registry as root_mod
    from mmengine.registry import Registry
    return [k for k, v in vars(root_mod).items() if isinstance(v, Registry)]


def _known_anywhere(type_: str, scope: str) -> bool:
    """Whether any registry of ``scope`` (or an import path) resolves ``type_``."""
    for name in _root_registry_names():
        try:
            if _registry(name, scope).get(type_):
                return True
        except ScopeImportError:
            raise
        except Exception:  # noqa: BLE001 - not in this one
            continue
    return False


def _registered_names(registry_name: str, scope: str) -> list:
    reg = _registry(registry_name, scope)
    names = set()
    while reg is not None:
        names |= set(reg._module_dict)
        reg = reg.parent
    return sorted(names)


# ------------------------------------------------------------------------------------------
# the check
# ------------------------------------------------------------------------------------------
#: keys mmengine consumes next to a typed dict's constructor arguments
_META_KEYS = {'type', '_scope_'}
#: nested typed dicts found under these keys belong to another registry
_CHILD_REGISTRY = {
    ('DATASETS', 'pipeline'): 'TRANSFORMS',
    ('VISUALIZERS', 'vis_backends'): 'VISBACKENDS',
    ('STRATEGIES', 'model_wrapper'): 'MODEL_WRAPPERS',
    ('OPTIM_WRAPPERS', 'optimizer'): 'OPTIMIZERS',
}
#: keys mmengine's build takes out of these registries' dicts before calling the class
_REGISTRY_EXTRA = {
    'PARAM_SCHEDULERS': {'convert_to_iter_based', 'optimizer'},  # build_scheduler_from_cfg
    'HOOKS': {'priority'},  # Runner.register_hook
    'OPTIMIZERS': {'params'},  # given by the optimizer-wrapper constructor
}
#: optimizer-wrapper keys read by mmengine's optimizer-wrapper build, not the wrapper class
_OPTIM_WRAPPER_KEYS = {'type', 'constructor', 'paramwise_cfg', 'optimizer', '_scope_'}
#: dataloader keys mmengine's Runner.build_dataloader takes out before DataLoader(**rest)
_DATALOADER_KEYS = {'dataset', 'sampler', 'batch_sampler', 'collate_fn', 'worker_init_fn'}
_ENV_KEYS = {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'}
_MP_KEYS = {'mp_start_method', 'opencv_num_threads'}
_AUTO_SCALE_LR_KEYS = {'enable', 'base_batch_size'}
#: top-level keys tools and mmengine read besides the Runner's arguments
_EXTRA_TOP_KEYS = {'_base_', 'custom_imports', 'runner_type', 'model_wrapper_cfg', 'gpu_ids',
                   'work_dir', 'launcher', 'resume', 'load_from', 'strategy', 'compile',
                   'filename', 'dist_params', 'vis_backends', 'default_scope'}


def runner_keys() -> Set[str]:
    """Top-level keys mmengine's Runner / FlexibleRunner read (their ``__init__`` arguments)."""
    from mmengine.runner import FlexibleRunner, Runner
    keys = set(_EXTRA_TOP_KEYS)
    for cls in (Runner, FlexibleRunner):
        keys |= (_params(cls.__init__)[0] or set()) - {'self'}
    return keys


class _Checker:

    def __init__(self, cfg, filename: str, cli_keys: Iterable[str]) -> None:
        self.cfg = cfg
        self.filename = filename
        self.scope = cfg.get('default_scope') or 'mmengine'
        self.cli_keys = list(cli_keys)
        self.problems: List[str] = []

    # ---------------------------------------------------------------- reporting
    def _origin(self, path: str) -> str:
        path = re.sub(r'\[(\d+)\]', r'.\1', path)
        for key in self.cli_keys:
            if key == path or key.startswith(path + '.') or path.startswith(key + '.'):
                return ' (set by --cfg-options)'
        return ''

    def unknown(self, path: str, key: str, valid: Iterable[str], owner: str) -> None:
        valid = sorted(v for v in set(valid) if not v.startswith('_') or v == '_scope_')
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        full = f'{path}.{key}' if path else key
        hint = (f"did you mean '{close[0]}'?" if close else
                'valid keys: ' + ', '.join(valid[:25]) + (', ...' if len(valid) > 25 else ''))
        self.problems.append(f"unknown key '{full}'{self._origin(full)} for {owner}: {hint}")

    def bad_value(self, path: str, msg: str) -> None:
        self.problems.append(f"'{path}'{self._origin(path)} {msg}")

    # ---------------------------------------------------------------- typed dicts
    def typed(self, d, path: str, registry: str, extra: Set[str] = frozenset(),
              default_type=None) -> None:
        """Check the typed dict ``d`` at ``path`` and the typed dicts nested in it."""
        if not isinstance(d, dict):
            return
        extra = set(extra) | _REGISTRY_EXTRA.get(registry, set())
        type_ = d.get('type', default_type)
        scope = d.get('_scope_') or self.scope
        cls = _lookup(registry, type_, scope) if type_ is not None else None
        if cls is None and isinstance(type_, str) and _type_is_certain(path):
            self.unknown_type(type_, path, registry, scope)
        if cls is not None:
            valid = accepted_keys(cls)
            if valid is not None:
                valid = set(valid) | _META_KEYS | set(extra)
                name = getattr(cls, '__name__', str(type_))
                for key in d:
                    if key not in valid:
                        self.unknown(path, key, valid, f"{name} ({path or 'config'})")
            self.dict_args(cls, d, path)
        self.nested(d, path, registry)

    def unknown_type(self, type_: str, path: str, registry: str, scope: str) -> None:
        """A misspelt type: reported only with a close registered name (a name no registry
        knows yet may still be registered by a lazy import at build time, e.g. mmcv's ops)."""
        names = _registered_names(registry, scope)
        close = difflib.get_close_matches(type_.split('.')[-1], names, n=1, cutoff=0.75)
        if close and not _known_anywhere(type_, scope):
            self.problems.append(
                f"unknown type '{type_}' at '{path}'{self._origin(path + '.type')}: not in the "
                f"{scope} {registry} registry; did you mean '{close[0]}'?")

    def dict_args(self, cls, d, path: str) -> None:
        """Untyped dict arguments the class expands into a call (``Teacher(**teacher)``)."""
        for key, value in d.items():
            if not isinstance(value, dict) or 'type' in value or not isinstance(key, str) \
                    or key.endswith('_cfg'):
                continue
            target = dict_arg_target(cls, key)
            valid = accepted_keys(target) if target is not None else None
            if valid is None:
                continue
            name = getattr(target, '__name__', str(target))
            for k in value:
                if k not in valid:
                    self.unknown(f'{path}.{key}', k, valid,
                                 f"{name} ({path}.{key}, given as {name}(**{key}))")

    def nested(self, d, path: str, registry: str) -> None:
        for key, value in d.items():
            if not isinstance(key, str) or key in _META_KEYS or key.endswith('_cfg') \
                    or key.endswith('_cfgs'):
                continue
            child = _CHILD_REGISTRY.get((registry, key), registry)
            self.any(value, f'{path}.{key}' if path else key, child)

    def any(self, value, path: str, registry: str) -> None:
        """A typed dict, a list of them, or a plain dict holding them (e.g. named teachers)."""
        if isinstance(value, dict):
            if 'type' in value:
                self.typed(value, path, registry)
            else:
                self.nested(value, path, registry)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, (dict, list, tuple)):
                    self.any(item, f'{path}[{i}]', registry)

    # ---------------------------------------------------------------- plain runner dicts
    def plain(self, d, path: str, valid: Set[str], owner: str) -> None:
        if isinstance(d, dict):
            for key in d:
                if key not in valid:
                    self.unknown(path, key, valid, owner)

    def dataloader(self, loader, path: str) -> None:
        if not isinstance(loader, dict):
            return
        from torch.utils.data import DataLoader
        valid = (_params(DataLoader.__init__)[0] or set()) | _DATALOADER_KEYS
        self.plain(loader, path, valid, f'the dataloader ({path}; torch DataLoader arguments)')
        self.typed(loader.get('dataset'), f'{path}.dataset', 'DATASETS')
        for key in ('sampler', 'batch_sampler'):
            if isinstance(loader.get(key), dict):
                self.typed(loader[key], f'{path}.{key}', 'DATA_SAMPLERS')
        self.loader_values(loader, path)

    def loader_values(self, loader, path: str) -> None:
        bs = loader.get('batch_size')
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
            self.bad_value(f'{path}.batch_size', f'is {bs!r}: it must be a positive integer')
        nw = loader.get('num_workers')
        if nw is not None and (isinstance(nw, bool) or not isinstance(nw, int) or nw < 0):
            self.bad_value(f'{path}.num_workers', f'is {nw!r}: it must be an integer >= 0')
        datasets = [(loader.get('dataset'), f'{path}.dataset')]
        while datasets:
            ds, p = datasets.pop()
            if not isinstance(ds, dict):
                continue
            root = ds.get('data_root')
            if root is not None and not isinstance(root, str):
                self.bad_value(f'{p}.data_root', f'is {root!r} ({type(root).__name__}): it must '
                               'be a path (a string)')
            if isinstance(ds.get('dataset'), dict):
                datasets.append((ds['dataset'], f'{p}.dataset'))
            for i, sub in enumerate(ds.get('datasets') or []):
                datasets.append((sub, f'{p}.datasets[{i}]'))

    def loop(self, loop, path: str, default) -> None:
        if not isinstance(loop, dict):
            return
        if 'type' in loop:
            self.typed(loop, path, 'LOOPS', extra={'runner', 'dataloader', 'evaluator'})
            cls = _lookup('LOOPS', loop['type'], loop.get('_scope_') or self.scope)
        else:
            cls = default(loop)
            if cls is not None:
                valid = set(accepted_keys(cls) or ()) | {'by_epoch'}
                if accepted_keys(cls) is not None:
                    self.plain(loop, path, valid, f'{cls.__name__} ({path})')
        for key in ('max_epochs', 'max_iters', 'val_interval', 'val_begin'):
            v = loop.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or
                                  v < (1 if key != 'val_begin' else 0)):
                self.bad_value(f'{path}.{key}', f'is {v!r}: it must be a positive integer')

    # ---------------------------------------------------------------- the whole config
    def run(self, file_keys: Optional[Set[str]]) -> None:
        from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop
        cfg = self.cfg
        if file_keys is not None:
            valid = runner_keys() | set(file_keys)
            for key in sorted({k.split('.')[0] for k in self.cli_keys}):
                if key not in valid:
                    self.unknown('', key, valid, 'the config (no config file defines it and '
                                 'nothing reads it)')
        self.typed(cfg.get('model'), 'model', 'MODELS')
        if isinstance(cfg.get('data_preprocessor'), dict):
            self.typed(cfg['data_preprocessor'], 'data_preprocessor', 'MODELS')
        hooks = cfg.get('default_hooks') or {}
        for name, hook in hooks.items():
            self.typed(hook, f'default_hooks.{name}', 'HOOKS')
        for i, hook in enumerate(cfg.get('custom_hooks') or []):
            self.typed(hook, f'custom_hooks[{i}]', 'HOOKS')
        for split in ('train', 'val', 'test'):
            self.dataloader(cfg.get(f'{split}_dataloader'), f'{split}_dataloader')
            if split != 'train':
                self.any(cfg.get(f'{split}_evaluator'), f'{split}_evaluator', 'METRICS')
        self.optim_wrapper(cfg.get('optim_wrapper'))
        self.any(cfg.get('param_scheduler'), 'param_scheduler', 'PARAM_SCHEDULERS')
        self.loop(cfg.get('train_cfg'), 'train_cfg',
                  lambda d: EpochBasedTrainLoop if d.get('by_epoch', True) else
                  IterBasedTrainLoop)
        self.loop(cfg.get('val_cfg'), 'val_cfg', lambda d: ValLoop)
        self.loop(cfg.get('test_cfg'), 'test_cfg', lambda d: TestLoop)
        for key, reg in (('visualizer', 'VISUALIZERS'), ('model_wrapper_cfg', 'MODEL_WRAPPERS'),
                         ('strategy', 'STRATEGIES'), ('log_processor', 'LOG_PROCESSORS')):
            if isinstance(cfg.get(key), dict):
                self.typed(cfg[key], key, reg,
                           default_type='LogProcessor' if key == 'log_processor' else None)
        from mmengine.runner import Runner
        self.plain(cfg.get('randomness'), 'randomness',
                   (_params(Runner.set_randomness)[0] or set()) - {'self'},
                   'randomness (Runner.set_randomness)')
        env = cfg.get('env_cfg')
        self.plain(env, 'env_cfg', _ENV_KEYS, 'env_cfg')
        if isinstance(env, dict):
            self.plain(env.get('mp_cfg'), 'env_cfg.mp_cfg', _MP_KEYS, 'env_cfg.mp_cfg')
        self.plain(cfg.get('auto_scale_lr'), 'auto_scale_lr', _AUTO_SCALE_LR_KEYS,
                   'auto_scale_lr')

    def optim_wrapper(self, ow) -> None:
        if not isinstance(ow, dict):
            return
        if 'optimizer' not in ow and all(isinstance(v, dict) for k, v in ow.items()
                                         if k not in _OPTIM_WRAPPER_KEYS):
            return  # several optimizers (OptimWrapperDict): built by a custom constructor
        self.typed(ow, 'optim_wrapper', 'OPTIM_WRAPPERS', extra=_OPTIM_WRAPPER_KEYS,
                   default_type='OptimWrapper')
        opt = ow.get('optimizer')
        if isinstance(opt, dict):
            lr = opt.get('lr')
            if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))):
                self.bad_value('optim_wrapper.optimizer.lr',
                               f'is {lr!r} ({type(lr).__name__}): it must be a number')
            elif lr is not None and lr < 0:
                self.bad_value('optim_wrapper.optimizer.lr', f'is {lr!r}: it must be >= 0')


def check_config(cfg, filename: str, file_keys: Optional[Iterable[str]] = None,
                 cli_options: Optional[dict] = None) -> None:
    """Raise :class:`ConfigCheckError` listing every unknown key and impossible value.

    Args:
        cfg (Config): The merged config (after ``--cfg-options`` and the tool's own changes).
        filename (str): The config file, for the message.
        file_keys (Iterable[str], optional): The top-level keys its files define (taken before
            ``--cfg-options`` were merged). Without them top-level keys are not checked.
        cli_options (dict, optional): The ``--cfg-options`` given (their keys are named as
            such in the message, and their top-level keys are checked).
    """
    checker = _Checker(cfg, filename, (cli_options or {}).keys())
    checker.run(set(file_keys) if file_keys is not None else None)
    if checker.problems:
        n = len(checker.problems)
        raise ConfigCheckError(
            f"config {filename}: {n} problem{'s' if n > 1 else ''} found before starting:\n  "
            + '\n  '.join(checker.problems)
            + '\nFix the key in the config file or in --cfg-options (a misspelt key would be '
            'ignored or fail later); --no-config-check skips this check.')


def add_config_check_args(parser: ArgumentParser) -> None:
    parser.add_argument(
        '--no-config-check', action='store_true',
        help='skip the check of the config for unknown keys and impossible values before the '
        'run starts (pcae_mm.utils.config_check)')
