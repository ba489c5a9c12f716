#!/usr/bin/env bash
# GPU check, <= 10 minutes on one GPU: install the [gpu] extra in a fresh venv, then 3 epochs of dubai-spss
# in mixed_float16 with XLA off and on (benchmarks/gpu_check.py): seconds per epoch, images/s, peak GPU memory.
#   bash benchmarks/gpu_check.sh [DATA_DIR]      # DATA_DIR: the folder holding aerial-dubai (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-gpu
.venv-gpu/bin/pip install -q ".[gpu]"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
.venv-gpu/bin/python benchmarks/gpu_check.py "${1:-../shared/data}"
