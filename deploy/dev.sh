#!/usr/bin/env bash
# One entry point for a fresh checkout: creates .venv inside the checkout, installs the project
# (and its test extras), then runs what was asked.
#   deploy/dev.sh serve [edgelab serve options]   start the whole stack on its embedded defaults
#   deploy/dev.sh test  [pytest options]          run the whole test suite (one worker per CPU)
#   deploy/dev.sh test-without-tools [pytest options]
#                                                 the same with wrk, nginx and varnishd hidden (a private mount
#                                                 namespace binds /dev/null over them; needs root or user
#                                                 namespaces): proves the suite needs nothing installed by hand
#   deploy/dev.sh bench [all|core|pop|trigger|node|async] [--quick] [--markdown]   run the benchmarks
#   deploy/dev.sh loadtest SCENARIO [...]         locust load test (cold-warm, hits, misses, ...)
#   deploy/dev.sh cache-tests PATH [--id TEST]    the HTTP caching test suite (a checkout of
#                                                 github.com/http-tests/cache-tests kept outside this repository)
#                                                 through one POP; prints its summary (bench/cache_tests.py)
#   deploy/dev.sh edgelab ...                     any edgelab command
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.edgelab-installed"

need_install() {
    [ ! -x "$VENV/bin/python" ] && return 0
    [ ! -f "$STAMP" ] && return 0
    [ "$ROOT/pyproject.toml" -nt "$STAMP" ] && return 0
    return 1
}

if need_install; then
    "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "edgelab needs Python >= 3.11"'
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev,load]"
    touch "$STAMP"
fi

# Node.js for the nodejs*.x runtimes, from registry packages into the venv (never the host's node; see
# edge/invocation/execution/node_dist.py). A no-op once installed. `serve` and `bench` get the default major up
# front (a function on another major installs it on first use); the tests need every major, since they check
# what differs between them, and never download anything themselves.
node_runtimes() {
    "$VENV/bin/python" -m edge.invocation.execution.node_dist install "$@" >/dev/null
}

# Debian's Chromium for the dashboard's browser test (tests/control/admin/test_dashboard_browser.py drives
# /usr/bin/chromium with Playwright, which never downloads a browser of its own). A no-op once installed.
chromium_browser() {
    [ -x /usr/bin/chromium ] && return 0
    echo "installing chromium (Debian package) for the dashboard's browser test..." >&2
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
}

cmd="${1:-serve}"
shift || true
case "$cmd" in
    serve|bench|edgelab) node_runtimes 20 ;;
    test|test-without-tools) node_runtimes all; chromium_browser ;;
esac
case "$cmd" in
    serve) exec "$VENV/bin/edgelab" serve "$@" ;;
    # one pytest-xdist worker per CPU (the suite's tests are independent: own ports, own state dirs); `-n 0` runs
    # it in one process
    test)  exec "$VENV/bin/python" -m pytest -n auto "$@" ;;
    test-without-tools)
        # Every copy of each tool on PATH (and its resolved target) is covered by /dev/null, which is not
        # executable, so `command -v`, shutil.which and exec all fail as on a machine without it.
        hide="${EDGELAB_HIDE_TOOLS:-wrk nginx varnishd}"
        if [ "$(id -u)" = 0 ]; then ns=(unshare --mount --propagation private)
        else ns=(unshare --user --map-root-user --mount --propagation private); fi
        exec "${ns[@]}" bash -c '
            set -euo pipefail
            for tool in $1; do
                IFS=: read -ra dirs <<< "$PATH"
                for d in "${dirs[@]}"; do
                    f="$d/$tool"
                    [ -e "$f" ] || continue
                    for target in "$f" "$(readlink -f "$f")"; do
                        mount --bind /dev/null "$target" 2>/dev/null || true
                    done
                done
                for d in "${dirs[@]}"; do  # command -v also names files it cannot run: test each
                    if [ -f "$d/$tool" ] && [ -x "$d/$tool" ]; then echo "could not hide $d/$tool" >&2; exit 2; fi
                done
            done
            echo "hidden for this run: $1" >&2
            shift
            exec "$@"' hide "$hide" "$VENV/bin/python" -m pytest -n auto "$@" ;;
    bench)
        if ! command -v wrk >/dev/null 2>&1; then
            echo "installing wrk (Debian package) for the HTTP benchmarks..." >&2
            if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
            else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
        fi
        [ $# -eq 0 ] && set -- all
        exec "$VENV/bin/python" -m bench "$@" ;;
    loadtest) exec "$VENV/bin/edgelab" loadtest "$@" ;;
    cache-tests) exec "$VENV/bin/python" -m bench.cache_tests "$@" ;;
    edgelab) exec "$VENV/bin/edgelab" "$@" ;;
    *) echo "usage: deploy/dev.sh {serve|test|test-without-tools|bench|loadtest|cache-tests|edgelab} [args...]" >&2; exit 2 ;;
esac
