#!/usr/bin/env bash
# Install kimi-cli 1.52.0 (PyPI) into its own virtualenv, for the side-by-side benchmarks
# (benchmarks/code_safety.py, benchmarks/code_startup.py). Run once; running again is a no-op.
#
# kimi-cli needs Python >= 3.12 while openk2 targets 3.11, so it lives outside the repo:
#   $OPENK2_BENCH_OPT/kimi-venv   (default OPENK2_BENCH_OPT=~/.local/opt/openk2-bench)
# The interpreter is the first that works of: $KIMI_PYTHON, python3.13 / python3.12 on PATH,
# pyenv's 3.12+ builds, a CPython 3.13 built earlier by this script; otherwise CPython 3.13.5 is
# built from the Debian source tarball into $OPENK2_BENCH_OPT/py313 (needs a C toolchain and the
# -dev packages for ssl, zlib, ffi, sqlite, bz2, lzma, readline; on Debian/Ubuntu:
#   apt-get install build-essential libssl-dev zlib1g-dev libffi-dev libsqlite3-dev \
#       libbz2-dev liblzma-dev libreadline-dev
# ). KIMI_BUILD_PYTHON=1 forces that build. Nothing of kimi-cli enters the repo.
#
# The benchmarks find the venv through the same OPENK2_BENCH_OPT (or --kimi-venv DIR).
set -euo pipefail

KIMI_VERSION=1.52.0
OPT=${OPENK2_BENCH_OPT:-$HOME/.local/opt/openk2-bench}
VENV=$OPT/kimi-venv
PY_VERSION=3.13.5
PY_PREFIX=$OPT/py313
PY_TARBALL=python3.13_${PY_VERSION}.orig.tar.xz
PY_URL=http://deb.debian.org/debian/pool/main/p/python3.13/$PY_TARBALL
PY_MD5=dbaa8833aa736eddbb18a6a6ae0c10fa

installed() {
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('kimi-cli') != '$KIMI_VERSION')" 2>/dev/null
}

usable() {  # a Python >= 3.12 with the ssl module pip needs
    "$1" -c "import sys, ssl, venv; sys.exit(sys.version_info < (3, 12))" 2>/dev/null
}

find_python() {
    local c
    if [[ "${KIMI_BUILD_PYTHON:-0}" != 1 ]]; then
        for c in "${KIMI_PYTHON:-}" python3.13 python3.12 \
                 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 "$PY_PREFIX/bin/python3.13"; do
            [[ -n "$c" ]] && usable "$c" && { command -v "$c"; return; }
        done
    fi
    build_python >&2
    echo "$PY_PREFIX/bin/python3.13"
}

build_python() {
    local src=$OPT/py313-src
    rm -rf "$src" && mkdir -p "$src"
    echo "building CPython $PY_VERSION into $PY_PREFIX (several minutes)"
    curl -fsSL -o "$src/$PY_TARBALL" "$PY_URL"
    echo "$PY_MD5  $src/$PY_TARBALL" | md5sum -c --quiet -
    tar -xJf "$src/$PY_TARBALL" -C "$src"
    (cd "$src/Python-$PY_VERSION" \
        && ./configure -q --prefix="$PY_PREFIX" --with-ensurepip=install \
        && nice make -s -j"$(nproc)" \
        && make -s altinstall)
    usable "$PY_PREFIX/bin/python3.13" || {
        echo "the built Python lacks ssl or venv: install the -dev packages listed above" >&2
        exit 1
    }
    rm -rf "$src"
}

main() {
    if installed; then
        echo "kimi-cli $KIMI_VERSION already in $VENV"
        return
    fi
    mkdir -p "$OPT"
    local python
    python=$(find_python)
    echo "using $python ($("$python" --version))"
    "$python" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "kimi-cli==$KIMI_VERSION"
    installed
    echo "kimi-cli $KIMI_VERSION installed in $VENV"
}

main "$@"
