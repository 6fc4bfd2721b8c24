#!/bin/bash
# The whole test suite, an older tree beside this one, alternating (issue 26, point 6).
#
#   git worktree add /tmp/suite-before REV
#   bench/suite_side_by_side.sh /tmp/suite-before [RUNS]
#
# before: the older tree as its `make test` ran it then (with this machine's environment, and
#         PYTHONPATH on that tree so every process it starts imports its bulksync)
# after, cold: this tree as a fresh clone has it (every __pycache__ outside .venv deleted),
#         then what `make test` runs now: bytecode written, bulksync compiled once, -n 4
# after, warm: the same again, with the bytecode the cold run wrote
# Both use this tree's .venv. Figures: wall time, then user and system CPU (/usr/bin/time).
set -u
before_tree=$(realpath "$1")
runs=${2:-2}
here=$(realpath "$(dirname "$0")/..")
python=$here/.venv/bin/python

before() {
    (cd "$before_tree" && find . -name __pycache__ -prune -exec rm -rf {} + &&
     PYTHONPATH=$before_tree /usr/bin/time -f "before: %e s wall, %U user %S sys" \
         "$python" -m pytest -q -n 4 -p no:cacheprovider 2>&1 | tail -n 1)
}
after() {  # $1: cold or warm
    (cd "$here" && { [ "$1" = warm ] || find bulksync tests -name __pycache__ -prune -exec rm -rf {} +; } &&
     PYTHONDONTWRITEBYTECODE= /usr/bin/time -f "after, $1: %e s wall, %U user %S sys" \
         bash -c "$python -m compileall -q bulksync && $python -m pytest -q -n 4 -p no:cacheprovider" 2>&1 | tail -n 1)
}
grep -m1 "model name" /proc/cpuinfo; nproc; uptime
for _ in $(seq "$runs"); do before; after cold; after warm; done
uptime
