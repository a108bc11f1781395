#!/usr/bin/env python
"""Put detectron2 v0.6 into the active Python environment, idempotently.

Policy (see docs in README.md, "Install"):

* An importable detectron2 that has its compiled ops (``detectron2._C``), i.e. an official build made
  from a source checkout, is left untouched.
* An importable detectron2 installed earlier by this script is left untouched.
* Otherwise the source distribution of PyPI's ``pb1-detectron2==0.6`` is downloaded, checked
  against its sha256 (its Python files are byte-identical to the official v0.6 tag, but it lacks
  ``detectron2/layers/csrc`` and so cannot build ``detectron2._C``), and its Python package is
  installed without compiled ops. ``hpps_d2.compat`` then supplies a stand-in ``detectron2._C``
  that names the missing op when one is used.

``--wheel-dir DIR`` builds that same Python package as a wheel (``py3-none-any``) into DIR instead
of installing it, whatever is installed here: for a machine without network, where
``pip install --no-deps`` of the wheel gives what this script would have installed
(``bench/gpu_smoke_prepare.sh``).

Usage: python tools/install_detectron2.py [--force | --wheel-dir DIR]
"""
import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

SDIST_NAME = "pb1-detectron2"
SDIST_VERSION = "0.6"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
# Version string of the pure-Python install; the local label tells it apart from an official build.
PURE_VERSION = "0.6+pb1.nocext"

# detectron2 v0.6's own install_requires, minus ``black==21.4b2`` (only used by
# LazyConfig.to_py, and its pin conflicts with current click) and the caffe2-only ``future``/``pydot``.
# fvcore/iopath keep v0.6's upper bounds; iopath is pinned to 0.1.9, the version verified with
# fvcore 0.1.5.post20221221 (0.1.10 is outside detectron2 v0.6's range).
REQUIREMENTS = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "tensorboard",
    "fvcore>=0.1.5,<0.1.6",
    "iopath==0.1.9",
    "omegaconf>=2.1",
    "hydra-core>=1.1",
    "scipy>1.5.1",
]

SETUP_PY = """
from setuptools import find_packages, setup
setup(
    name="detectron2",
    version={version!r},
    description="detectron2 v0.6 Python package (from PyPI pb1-detectron2==0.6), without compiled ops",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={{"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]}},
    python_requires=">=3.7",
    install_requires={requirements!r},
)
"""


def _pip(*args):
    cmd = [sys.executable, "-m", "pip", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)


def installed_state():
    """Return "official", "pure" or None for the detectron2 importable from this interpreter."""
    probe = (
        "import importlib.util, detectron2, importlib.metadata as m\n"
        "has_c = importlib.util.find_spec('detectron2._C') is not None\n"
        "try:\n    v = m.version('detectron2')\nexcept Exception:\n    v = ''\n"
        "print('official' if has_c else ('pure' if v == %r else 'other'))\n" % PURE_VERSION
    )
    # A subprocess, so that a half-importable detectron2 cannot poison this interpreter.
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if res.returncode != 0:
        return None
    return res.stdout.strip().splitlines()[-1]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_tree(workdir):
    """Download and check the sdist into ``workdir``; return a folder holding its ``detectron2``
    package and our ``setup.py``, ready for ``pip install`` or ``pip wheel``."""
    if importlib.util.find_spec("torch") is None:
        sys.exit("install_detectron2: torch must be installed first (its setup.py imports torch).")
    # The sdist's setup.py imports torch to compute metadata: no build isolation.
    _pip(
        "download", f"{SDIST_NAME}=={SDIST_VERSION}", "--no-deps", "--no-binary", ":all:",
        "--no-build-isolation", "--disable-pip-version-check", "-d", workdir,
    )
    sdists = [f for f in os.listdir(workdir) if f.endswith(".tar.gz")]
    if len(sdists) != 1:
        sys.exit(f"install_detectron2: expected one sdist in {workdir}, found {sdists}")
    sdist = os.path.join(workdir, sdists[0])
    digest = sha256_of(sdist)
    if digest != SDIST_SHA256:
        sys.exit(
            f"install_detectron2: sha256 mismatch for {sdists[0]}: got {digest}, "
            f"expected {SDIST_SHA256}. Refusing to install."
        )
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, filter="data")
    src = os.path.join(workdir, f"{SDIST_NAME}-{SDIST_VERSION}", "detectron2")
    if not os.path.isdir(src):
        sys.exit(f"install_detectron2: {src} missing from the sdist")
    build = os.path.join(workdir, "build")
    os.makedirs(build)
    shutil.copytree(src, os.path.join(build, "detectron2"))
    with open(os.path.join(build, "setup.py"), "w") as f:
        f.write(SETUP_PY.format(version=PURE_VERSION, requirements=REQUIREMENTS))
    return build


def install_pure(workdir):
    _pip("install", "--no-build-isolation", "--disable-pip-version-check", build_tree(workdir))


def build_wheel(workdir, wheel_dir):
    """Write ``detectron2-<PURE_VERSION>-py3-none-any.whl`` into ``wheel_dir``; return its path."""
    build = build_tree(workdir)
    os.makedirs(wheel_dir, exist_ok=True)
    out = os.path.join(workdir, "wheel")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check", "-w", out,
         build)
    wheels = os.listdir(out)
    if len(wheels) != 1 or not wheels[0].endswith("-py3-none-any.whl"):
        sys.exit(f"install_detectron2: expected one py3-none-any wheel, got {wheels}")
    dst = os.path.join(wheel_dir, wheels[0])
    shutil.copy(os.path.join(out, wheels[0]), dst)
    return dst


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="reinstall the pure-Python package")
    parser.add_argument(
        "--wheel-dir",
        metavar="DIR",
        help="build the pure-Python package as a wheel into DIR instead of installing it",
    )
    args = parser.parse_args()
    if args.wheel_dir:
        with tempfile.TemporaryDirectory(prefix="hpps_d2_detectron2_") as workdir:
            path = build_wheel(workdir, args.wheel_dir)
        print(f"install_detectron2: wrote {path} (detectron2 {PURE_VERSION}, Python package only).")
        return
    state = installed_state()
    if state == "official":
        print("install_detectron2: an official detectron2 build (with detectron2._C) is installed; kept.")
        return
    if state == "pure" and not args.force:
        print(f"install_detectron2: detectron2 {PURE_VERSION} is installed; kept.")
        return
    if state == "other" and not args.force:
        print(
            "install_detectron2: an importable detectron2 without compiled ops and not installed by "
            "this script was found; kept. Use --force to replace it with pb1-detectron2==0.6."
        )
        return
    with tempfile.TemporaryDirectory(prefix="hpps_d2_detectron2_") as workdir:
        install_pure(workdir)
    if installed_state() != "pure":
        sys.exit("install_detectron2: detectron2 is still not importable after the install")
    print(f"install_detectron2: installed detectron2 {PURE_VERSION} (Python package only).")


if __name__ == "__main__":
    main()
