#!/usr/bin/env python
"""hpps_d2: hybrid pre-training for person search (Tian et al., AAAI 2024) on detectron2.

torch/torchvision and detectron2 are installed by `make install` (see README.md), not here:
detectron2 has no PyPI release, and an existing torch build must be kept as it is.
"""
from setuptools import find_packages, setup

setup(
    name="hpps_d2",
    version="0.1.0",
    description="Hybrid pre-training for person search, as a detectron2 project",
    packages=find_packages(include=["hpps_d2", "hpps_d2.*"]),
    python_requires=">=3.9",
    install_requires=[
        # detectron2 v0.6 pins fvcore < 0.1.6; 0.1.5.post20221221 is the verified release.
        "fvcore==0.1.5.post20221221",
        # detectron2 v0.6 requires iopath < 0.1.10 and fvcore >= 0.1.7; 0.1.9 is verified.
        "iopath==0.1.9",
        # detectron2.model_zoo imports pkg_resources, which setuptools 81 removed.
        "setuptools<81",
        "numpy",
        "Pillow",
        "opencv-python-headless",
        "pycocotools",
        "scipy",
        "h5py",
        "lmdb",
        "matplotlib",
        "tabulate",
        "tensorboard",
        "scikit-learn",
        "pytest",
    ],
)
