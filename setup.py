"""Install with ``pip install -e .`` next to mmcv 2.1 / mmdet 3.3 (see README)."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

#: What mim and mmengine.hub read from ``mmdet_compconv/.mim/`` (as mmdet ships them).
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def requirements(path: str) -> list:
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


def add_mim_extension() -> None:
    """Put configs, tools and model-index.yml into ``mmdet_compconv/.mim``, as mmdet does.

    Symlinks for an editable install (``pip install -e .`` runs ``editable_wheel``; the
    deprecated ``setup.py develop`` too), copies for a wheel or an sdist, nothing otherwise.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    repo = osp.dirname(osp.abspath(__file__))
    mim = osp.join(repo, 'mmdet_compconv', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(repo, name), osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='mmdet-compconv',
    version='0.1.0',
    description='CompConv (compact convolution) backbones and necks for MMDetection 3.x',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdet_compconv', 'mmdet_compconv.*']),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=requirements('requirements/runtime.txt'),
    extras_require={'tests': requirements('requirements/tests.txt'),
                    'deploy': requirements('requirements/deploy.txt')},
)
