"""Install with ``pip install -e .`` next to mmcv 2.1 / mmdet 3.3 (see README)."""
from setuptools import find_packages, setup


def requirements(path: str) -> list:
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


setup(
    name='mmdet-compconv',
    version='0.1.0',
    description='CompConv (compact convolution) backbones and necks for MMDetection 3.x',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdet_compconv', 'mmdet_compconv.*']),
    python_requires='>=3.8',
    install_requires=requirements('requirements/runtime.txt'),
    extras_require={'tests': requirements('requirements/tests.txt'),
                    'deploy': requirements('requirements/deploy.txt')},
)
