# Sourced by the tests of the PyTorch references (torch_mt_check.sh, torch_start_check.sh): sets PY
# to the Python that has torch (Debian's python3-torch), or skips the test (exit 77) without one.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "SKIP: $PY cannot import torch (apt-get install python3-torch)"
    exit 77
fi
