"""Check and unpack the carried wheels (standard library only: runs before anything else).

``python tools/device/install_wheels.py .whl --check`` verifies that the folder holds exactly one
wheel for each line of ``tools/device/wheels.txt``, each installable on CPython 3.12 /
manylinux x86_64, 64 MiB in all (what one device call can carry). ``--target DIR`` unpacks them
into DIR (a wheel is a zip of the site-packages tree: unpacking is installing, minus console
scripts), in about a second and without pip or a network; put DIR on ``PYTHONPATH``.
``--prune`` deletes wheels of the listed packages at other versions (one version each).
"""
import argparse
import os
import os.path as osp
import re
import shutil
import sys
import time
import zipfile

HERE = osp.dirname(osp.abspath(__file__))
LIMIT_BYTES = 64 * 2**20
WHEEL_RE = re.compile(r'^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-'
                      r'(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$')


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def read_list(path: str) -> dict:
    """``wheels.txt`` -> {normalized name: version}."""
    specs = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if '==' not in line:
                raise ValueError(f'{path}: pin every wheel as name==version, got {line!r}')
            name, version = (s.strip() for s in line.split('==', 1))
            specs[normalize(name)] = version
    return specs


def parse_wheel(filename: str) -> dict:
    m = WHEEL_RE.match(filename)
    if not m:
        raise ValueError(f'not a wheel file name: {filename}')
    return dict(m.groupdict(), name=normalize(m['name']), file=filename)


def compatible(wheel: dict) -> bool:
    """Installable on CPython 3.12, Linux x86_64."""
    pys = wheel['py'].split('.')
    if wheel['abi'] == 'none' and wheel['plat'] == 'any':
        return any(p in ('py3', 'py2.py3', 'cp312', 'py312') for p in pys) or \
            wheel['py'] == 'py2.py3'
    plats = wheel['plat'].split('.')
    return 'cp312' in pys and any(p.startswith('manylinux') and p.endswith('x86_64')
                                  for p in plats)


def wheels_in(folder: str) -> list:
    if not osp.isdir(folder):
        return []
    return [parse_wheel(f) for f in sorted(os.listdir(folder)) if f.endswith('.whl')]


def check(folder: str, specs: dict) -> list:
    """Problems with the wheel folder (empty list: ready to carry)."""
    problems = []
    found = wheels_in(folder)
    if not found:
        return [f'no wheels in {folder}: run bash tools/device/prepare_wheels.sh']
    by_name = {}
    for w in found:
        by_name.setdefault(w['name'], []).append(w)
        if not compatible(w):
            problems.append(f"{w['file']}: not installable on CPython 3.12 / Linux x86_64")
    for name, version in specs.items():
        have = by_name.get(name, [])
        if not have:
            problems.append(f'{name}=={version}: missing')
        elif len(have) > 1:
            problems.append(f"{name}: several wheels ({', '.join(w['file'] for w in have)})")
        elif have[0]['version'] != version:
            problems.append(f"{name}: {have[0]['file']} is not version {version}")
    for name in sorted(set(by_name) - set(specs)):
        problems.append(f"{by_name[name][0]['file']}: not in the list (remove it)")
    total = sum(osp.getsize(osp.join(folder, w['file'])) for w in found)
    if total > LIMIT_BYTES:
        problems.append(f'{total / 2**20:.1f} MiB of wheels: more than one device call carries '
                        f'({LIMIT_BYTES / 2**20:.0f} MiB)')
    return problems


def prune(folder: str, specs: dict) -> list:
    """Delete wheels of listed packages at unlisted versions; return their names."""
    removed = []
    for w in wheels_in(folder):
        if w['name'] in specs and w['version'] != specs[w['name']]:
            os.remove(osp.join(folder, w['file']))
            removed.append(w['file'])
    return removed


def install(folder: str, target: str) -> int:
    """Unpack every wheel of ``folder`` into ``target``; return how many."""
    os.makedirs(target, exist_ok=True)
    count = 0
    for w in wheels_in(folder):
        with zipfile.ZipFile(osp.join(folder, w['file'])) as z:
            z.extractall(target)
        count += 1
    # <name>.data/{purelib,platlib}/ belongs in site-packages itself; scripts are not needed
    for entry in os.listdir(target):
        data = osp.join(target, entry)
        if entry.endswith('.data') and osp.isdir(data):
            for sub in ('purelib', 'platlib'):
                src = osp.join(data, sub)
                if osp.isdir(src):
                    shutil.copytree(src, target, dirs_exist_ok=True)
            shutil.rmtree(data)
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folder', help='wheel folder (e.g. .whl)')
    parser.add_argument('--list', default=osp.join(HERE, 'wheels.txt'), help='pinned wheels')
    parser.add_argument('--check', action='store_true', help='verify the folder against the list')
    parser.add_argument('--prune', action='store_true',
                        help='delete wheels of listed packages at other versions')
    parser.add_argument('--target', help='unpack the wheels into this site folder')
    args = parser.parse_args(argv)
    specs = read_list(args.list)
    if args.prune:
        for f in prune(args.folder, specs):
            print(f'removed {f} (not the listed version)')
    if args.check:
        problems = check(args.folder, specs)
        for p in problems:
            print(f'wheel check: {p}', file=sys.stderr)
        if problems:
            return 1
        total = sum(osp.getsize(osp.join(args.folder, w['file']))
                    for w in wheels_in(args.folder))
        print(f'{len(specs)} wheels, {total / 2**20:.1f} MiB in {args.folder}: ready to carry')
    if args.target:
        t0 = time.perf_counter()
        n = install(args.folder, args.target)
        print(f'unpacked {n} wheels into {args.target} in {time.perf_counter() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
