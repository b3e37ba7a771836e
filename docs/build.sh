#!/usr/bin/env bash
# Build the documentation site into docs/_build/html: the API reference, the user guide and
# the gallery (every example is executed). Warnings are errors, so a broken docstring,
# cross-reference or example fails the build. Links to other projects' documentation
# (intersphinx) need their objects.inv, fetched when the configuration is read: offline, one
# line says that those links are skipped, and the build goes on (SKLEARN_SFR_INTERSPHINX=0
# skips them without trying; SKLEARN_SFR_INTERSPHINX=1 fails without them).
#
#   bash docs/build.sh            # full build (executes the gallery)
#   bash docs/build.sh --fast     # skip executing the gallery (layout and API only)
#   bash docs/build.sh --clean    # remove every generated file first
set -euo pipefail
cd "$(dirname "$0")"

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MPLBACKEND=Agg
python="${PYTHON:-python}"

for arg in "$@"; do
    case "$arg" in
        --clean) rm -rf _build auto_examples generated sg_execution_times.rst ;;
        --fast) export SKLEARN_SFR_PLOT_GALLERY=False ;;
        *) echo "usage: $0 [--clean] [--fast]" >&2; exit 2 ;;
    esac
done

"$python" -m sphinx -W --keep-going -n -b html . _build/html
echo "docs built: $(pwd)/_build/html/index.html"
