#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine (as root, from anywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# lite: the tools that build the JupyterLite site of tests/browser/test_lite.py (npm needed too)
python -m pip install -q -e '.[test,lite]'

# A second kernel: the newest ipykernel 6 with ipywidgets 7 (Colab's combination), in an
# environment of its own, registered beside this environment's ipykernel 7 kernel.
if [ ! -x .venv-ipykernel6/bin/python ]; then
    python -m venv .venv-ipykernel6
fi
.venv-ipykernel6/bin/python -m pip install -q 'ipykernel>=6.17,<7' 'ipywidgets>=7.7,<8' -e .
.venv-ipykernel6/bin/python -m ipykernel install \
    --prefix "$(python -c 'import sys; print(sys.prefix)')" \
    --name ipyllm-ipykernel6 --display-name "Python 3 (ipykernel 6, ipywidgets 7)" >/dev/null

# Debian's chromium for the real-browser tests (Playwright cannot download its own here).
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
