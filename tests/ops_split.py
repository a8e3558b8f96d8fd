"""Which tests need mmcv's compiled ops, and the two halves of ``tools/run_tests.sh``.

On a new machine the set-up compiles mmcv's ops in the background (tools/setup_env.sh), so
tools/run_tests.sh runs the suite in two pytest calls: ``--mmcv-ops=without`` (the tests that
need no compiled ops: they run while the ops compile), then ``--mmcv-ops=only`` (it first waits
for the ops, printing ``waiting for mmcv ops: compiled N of 77``). Plain ``pytest`` (the default
``--mmcv-ops=all``) runs everything, waiting for the ops first if a selected test needs them.

A test needs the compiled ops when (read from the files, without importing them):

* its module imports mmdet, mmseg or mmcv.ops at module level or in a helper or fixture, or
  imports at module level a module of this repository (``tests.*``, ``tools.*``,
  ``pcae_mm.*``) that imports one of them at module level: the whole module;
* the test function itself imports one of them: that test;
* it is marked ``@pytest.mark.needs_ops`` (a test, a class or a module's ``pytestmark``): for
  what reading cannot see, e.g. a Runner built from an mmdet / mmseg config.

The first half hides the ops: ``mmcv._ext`` (the compiled library) cannot be imported in the
pytest process nor in any Python process it starts (``tests/no_ops/sitecustomize.py`` on
``PYTHONPATH``), exactly as with mmcv-lite. So a test that needs them but is not marked fails
in that half on every run, on a warm machine too, and the summary says how to mark it.
"""
import ast
import contextlib
import glob
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, Optional, Set

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: what an import needs the compiled ops for (a name or a dotted prefix)
OPS_IMPORTS = ('mmdet', 'mmseg', 'mmcv.ops', 'mmcv._ext')
#: top-level packages of this repository, followed through their module-level imports
LOCAL = ('tests', 'tools', 'pcae_mm')
NO_OPS_DIR = osp.join(ROOT, 'tests', 'no_ops')
HIDE_ENV = 'PCAE_MM_HIDE_MMCV_OPS'
MARK = 'needs_ops'
#: a config (or one of its _base_ files) that builds mmdet / mmseg models
_OPS_CONFIG = re.compile(r"""default_scope\s*=\s*['"](mmdet|mmseg)['"]|['"](mmdet|mmseg)::""")
_BASE_FILE = re.compile(r"""['"]([^'"\n]+\.py)['"]""")


def needs_ops_name(name: str) -> bool:
    """Whether importing the dotted ``name`` needs mmcv's compiled ops."""
    return any(name == m or name.startswith(m + '.') for m in OPS_IMPORTS)


def _package_of(path: str, root: str = ROOT) -> str:
    rel = osp.relpath(path, root)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel.rpartition('.')[0]


def _imported(node: ast.AST, package: str) -> Set[str]:
    """Dotted names imported anywhere under ``node`` (``from a import b`` gives a and a.b)."""
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            names.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ''
            if n.level:
                parts = package.split('.') if package else []
                parts = parts[:len(parts) - (n.level - 1)] if n.level > 1 else parts
                base = '.'.join(parts + ([n.module] if n.module else []))
            names.add(base)
            names.update(f'{base}.{a.name}' for a in n.names)
    return names


def _parse(path: str, text: Optional[str] = None) -> Optional[ast.Module]:
    try:
        if text is None:
            with open(path) as f:
                text = f.read()
        return ast.parse(text, path)
    except (SyntaxError, ValueError, OSError):
        return None


def _top_level(tree: ast.Module) -> ast.Module:
    """The module's statements outside function and class bodies."""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return ast.Module(body=[s for s in tree.body if not isinstance(s, defs)], type_ignores=[])


@dataclass
class FileNeeds:
    """What a test file needs: ``module`` (all its tests) or the named ``tests`` only."""
    module: bool = False
    tests: Set[str] = field(default_factory=set)
    why: str = ''
    marked: bool = False  # the text mentions the marker: its tests decide at collection


class OpsScan:
    """Reads files to tell which tests need the compiled ops (memoised per file)."""

    def __init__(self, root: str = ROOT):
        self.root = root
        self._modules: Dict[str, Optional[str]] = {}
        self._files: Dict[str, FileNeeds] = {}
        self._configs: Optional[Set[str]] = None

    def _local_file(self, name: str) -> Optional[str]:
        if name.split('.')[0] not in LOCAL:
            return None
        base = osp.join(self.root, *name.split('.'))
        for path in (base + '.py', osp.join(base, '__init__.py')):
            if osp.isfile(path):
                return path
        return None

    def config_needs(self, path: str, seen: Optional[Set[str]] = None) -> bool:
        """Whether a config file, or a ``_base_`` file it names, sets the mmdet / mmseg scope."""
        seen = set() if seen is None else seen
        if path in seen or not osp.isfile(path):
            return False
        seen.add(path)
        with open(path) as f:
            text = f.read()
        if _OPS_CONFIG.search(text):
            return True
        return any(self.config_needs(osp.normpath(osp.join(osp.dirname(path), rel)), seen)
                   for rel in _BASE_FILE.findall(text))

    def ops_configs(self) -> Set[str]:
        """The repository's configs (paths under its root) that build mmdet / mmseg models."""
        if self._configs is None:
            found = glob.glob(osp.join(self.root, 'configs', '**', '*.py'), recursive=True)
            self._configs = {osp.relpath(p, self.root) for p in found if self.config_needs(p)}
        return self._configs

    def names_ops_config(self, node: ast.AST) -> Optional[str]:
        """A string under ``node`` naming (the end of the path of) an mmdet / mmseg config."""
        for n in ast.walk(node):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and \
                    n.value.endswith('.py') and '\n' not in n.value:
                tail = n.value.lstrip('./')
                if any(c == tail or c.endswith('/' + tail) for c in self.ops_configs()):
                    return n.value
        return None

    def module_needs(self, path: str) -> Optional[str]:
        """The ops import a repository module makes at module level (directly or through the
        repository modules it imports there), or None."""
        if path in self._modules:
            return self._modules[path]
        self._modules[path] = None  # cycles: a module being read needs nothing more
        tree = _parse(path)
        if tree is None:
            return None
        found = None
        for name in sorted(_imported(_top_level(tree), _package_of(path, self.root))):
            if needs_ops_name(name):
                found = name
                break
            local = self._local_file(name)
            if local and local != path and self.module_needs(local):
                found = f'{name} -> {self.module_needs(local)}'
                break
        self._modules[path] = found
        return found

    def file_needs(self, path: str) -> FileNeeds:
        """What the tests of the test file ``path`` need."""
        if path in self._files:
            return self._files[path]
        with open(path) as f:
            text = f.read()
        tree = _parse(path, text)
        if tree is None:  # pytest reports the error when it imports the file
            return FileNeeds()
        package = _package_of(path, self.root)
        needs = FileNeeds(marked=MARK in text)
        whole = self.module_needs(path)
        config = self.names_ops_config(_top_level(tree))
        if whole:
            needs.module, needs.why = True, f'imports {whole}'
        elif config:
            needs.module, needs.why = True, f'names the mmdet / mmseg config {config}'

        def visit(defs, prefix: str, in_test_class: bool) -> None:
            for node in defs:
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f'{prefix}{node.name}::', node.name.startswith('Test'))
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found = sorted(n for n in _imported(node, package) if needs_ops_name(n))
                    config = self.names_ops_config(node)
                    if config:
                        found.append(f'the mmdet / mmseg config {config}')
                    if not found:
                        continue
                    is_test = node.name.startswith('test') and (not prefix or in_test_class)
                    if is_test:
                        needs.tests.add(prefix + node.name)
                    elif not needs.module:  # a helper or fixture: any test may use it
                        needs.module, needs.why = True, f'{node.name}() uses {found[0]}'

        visit(tree.body, '', False)
        self._files[path] = needs
        return needs


SCAN = OpsScan()


def _test_key(item: pytest.Item) -> str:
    name = getattr(item, 'originalname', None) or item.name
    return f'{item.cls.__name__}::{name}' if getattr(item, 'cls', None) else name


def item_needs_ops(item: pytest.Item) -> bool:
    """Whether a collected test needs the compiled ops (marker, or what its file shows)."""
    if item.get_closest_marker(MARK):
        return True
    path = str(item.path)
    if not path.endswith('.py'):
        return False
    needs = SCAN.file_needs(path)
    return needs.module or _test_key(item) in needs.tests


def hide_ops() -> bool:
    """Make ``mmcv._ext`` unimportable here and in every Python subprocess started from here;
    False when it is imported already (too late to hide it).

    ``sys.modules[name] = None`` is Python's own "not there": ``import`` raises
    ModuleNotFoundError and ``importlib.util.find_spec`` returns None, as with mmcv-lite (so
    mmengine's ``mmcv_full_available()`` says False and builds no ops either).
    """
    if sys.modules.get('mmcv._ext', None) is not None:
        return False
    sys.modules['mmcv._ext'] = None
    os.environ[HIDE_ENV] = '1'
    paths = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    if NO_OPS_DIR not in paths:
        os.environ['PYTHONPATH'] = os.pathsep.join([NO_OPS_DIR] + paths)
    return True


def _asks_without(argv) -> bool:
    return any(a == '--mmcv-ops=without' or (a == '--mmcv-ops' and argv[i + 1:i + 2] == [
        'without']) for i, a in enumerate(argv))


# As early as possible: tests/conftest.py imports this module first, before the conftests of the
# test folders (which pytest also loads before its configure hooks, and which import pcae_mm and
# with it mmcv). tools/run_tests.sh hides them at the interpreter's start (HIDE_ENV and
# no_ops/sitecustomize.py); this covers `pytest --mmcv-ops=without` typed by hand.
if os.environ.get(HIDE_ENV) == '1' or _asks_without(sys.argv):
    hide_ops()


# ---- pytest hooks (tests/conftest.py imports these) ------------------------------------------


def pytest_addoption(parser) -> None:
    parser.addoption(
        '--mmcv-ops', choices=('all', 'without', 'only'), default='all',
        help='all (default): every test; without: only the tests that need no compiled mmcv '
        'ops, with the ops hidden; only: only those that need them, after waiting for the '
        'background build (tests/ops_split.py)')


def pytest_configure(config) -> None:
    config.addinivalue_line(
        'markers', f'{MARK}: needs mmcv\'s compiled ops (mmdet / mmseg models); runs in the '
        'second half of tools/run_tests.sh (tests/ops_split.py)')
    if config.getoption('--mmcv-ops', 'all') == 'without' and not hide_ops():
        raise pytest.UsageError(
            '--mmcv-ops=without: mmcv._ext was imported before the tests started, so it cannot '
            f'be hidden; run pytest as tools/run_tests.sh does: {HIDE_ENV}=1 '
            f'PYTHONPATH={osp.relpath(NO_OPS_DIR)} python -m pytest --mmcv-ops=without ...')


def _wait_for_ops(config) -> None:
    """Wait (once per session) for the background build, with progress on the terminal."""
    if getattr(config, '_pcae_mm_ops_ready', False):
        return
    from tools.setup_state import LinePrinter, MmcvOpsError, ops_state, wait_for_mmcv_ops
    capman = config.pluginmanager.getplugin('capturemanager')
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        show = LinePrinter('[tests] ')
        state = ops_state()
        if state.waiting:
            show.note('the tests that need mmcv\'s compiled ops wait for the background build '
                      f'(log: {state.build_log})')
        try:
            wait_for_mmcv_ops(show)
        except MmcvOpsError as e:
            show.close()
            pytest.exit(f'the tests that need mmcv\'s compiled ops cannot run: {e}', returncode=1)
        show.close()
    config._pcae_mm_ops_ready = True


def pytest_ignore_collect(collection_path, config) -> Optional[bool]:
    mode = config.getoption('--mmcv-ops', 'all')
    name = collection_path.name
    if not (name.startswith('test_') and name.endswith('.py')) or not collection_path.is_file():
        return None
    needs = SCAN.file_needs(str(collection_path))
    if mode == 'without' and needs.module:
        return True  # never imported: it would not even import with the ops hidden
    if mode == 'only' and not (needs.module or needs.tests or needs.marked):
        return True
    if mode == 'only' or (mode == 'all' and needs.module):
        _wait_for_ops(config)  # before anything imports mmcv: this process then sees the ops
    return None


def pytest_collection_modifyitems(config, items) -> None:
    mode = config.getoption('--mmcv-ops', 'all')
    keep, drop = [], []
    for item in items:
        need = item_needs_ops(item)
        if need and not item.get_closest_marker(MARK):
            item.add_marker(MARK)
        if (mode == 'without' and need) or (mode == 'only' and not need):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if mode != 'without' and any(item_needs_ops(i) for i in items):
        _wait_for_ops(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if config.getoption('--mmcv-ops', 'all') != 'without':
        return
    hit = [r.nodeid for key in ('failed', 'error') for r in terminalreporter.stats.get(key, [])
           if 'mmcv._ext' in getattr(r, 'longreprtext', '')]
    if hit:
        terminalreporter.write_sep('=', 'tests that need mmcv\'s compiled ops', yellow=True)
        terminalreporter.write_line(
            'This half of the run hides them (--mmcv-ops=without, as mmcv-lite would). These '
            'tests tried to use them; mark each with @pytest.mark.needs_ops (or import mmdet / '
            'mmseg in it) so that it runs in the second half: ' + ', '.join(sorted(set(hit))))
