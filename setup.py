"""pcae-mm: cheaper, better masked-image-modeling pre-training as an OpenMMLab plugin."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'pcae_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='pcae_mm',
    version=get_version(),
    description='PCAE, PR-MIM, SdAE and MR-MAE masked image modeling for OpenMMLab',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['pcae_mm', 'pcae_mm.*']),
    python_requires='>=3.8',
    # The exact, tested stack is installed by tools/setup_env.sh (mmcv must be built with ops).
    # torch >= 2.6: torch.load defaults to weights_only=True (pcae_mm also passes it explicitly
    # at every checkpoint load site; older releases would unpickle arbitrary code by default).
    install_requires=[
        'torch>=2.6', 'mmengine>=0.10.0,<1.0', 'mmcv>=2.0.0,<2.2.0', 'mmpretrain>=1.2.0,<1.3',
    ],
    extras_require={
        'downstream': ['mmdet>=3.3.0,<3.4', 'mmsegmentation>=1.2.2,<1.3'],
        'tests': ['pytest', 'scikit-learn'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
