#!/usr/bin/env bash
# Fill .whl/ (ignored by git) with the wheels bench/gpu_smoke.sh installs on a lent GPU machine:
# Python 3.12, x86-64 manylinux, no network there. Runs here, with network to PyPI.
#
#     bash bench/gpu_smoke_prepare.sh          # then carry ".whl" in the device call
#
# Only what that machine lacks travels (its package list: torch, torchvision, numpy, scipy,
# matplotlib, pillow, opencv, pyyaml, tqdm, tabulate, cloudpickle, tensorboard, portalocker, h5py,
# scikit-learn, packaging are there); everything is installed there with --no-deps, so each
# dependency of a carried wheel that the machine lacks must be carried too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DIR=.whl

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$DIR/" "$exclude" 2>/dev/null || echo "/$DIR/" >>"$exclude"
rm -rf "$DIR"
mkdir -p "$DIR"

# The versions the CPU tests pass with (setup.py, tools/install_detectron2.py).
BINARY=(
  iopath==0.1.9 yacs==0.1.8 termcolor==3.3.0 omegaconf==2.3.1 hydra-core==1.3.8
  pycocotools==2.0.11 lmdb==3.0.0
)
# Published as sdists only: built here into pure-Python (py3-none-any) wheels.
SDIST_ONLY=(fvcore==0.1.5.post20221221 antlr4-python3-runtime==4.9.3)

pip=("$PY" -m pip --disable-pip-version-check -q)
"${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DIR" "${BINARY[@]}"
"${pip[@]}" wheel --no-deps -w "$DIR" "${SDIST_ONLY[@]}"
# detectron2: the sha256-checked pb1-detectron2==0.6 Python package, as `make install` puts it.
"$PY" tools/install_detectron2.py --wheel-dir "$DIR"

for w in "$DIR"/*.whl; do
  case $w in
    *-py3-none-any.whl | *-cp312-*manylinux*x86_64*.whl) ;;
    *) echo "gpu_smoke_prepare: $w does not install on CPython 3.12 x86-64" >&2; exit 1 ;;
  esac
done
ls -l "$DIR" | awk 'NR > 1 {printf "%8.1f KiB  %s\n", $5 / 1024, $NF}'
total=$(du -cb "$DIR"/*.whl | tail -1 | cut -f1)
echo "total: $(ls "$DIR"/*.whl | wc -l) wheels, $((total / 1024)) KiB (the device call carries at most 64 MiB)"
[ "$total" -lt $((32 * 1024 * 1024)) ] || { echo "gpu_smoke_prepare: .whl/ is over 32 MiB" >&2; exit 1; }
