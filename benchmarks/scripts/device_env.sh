# Sourced by the GPU-machine jobs: unpack the carried spaCy stack and encoder
# (../shared/device/README.md; staged into .device/ by stage_device.sh)
# and install this package. Needs REPO set to the repository root. The machine
# has no spaCy and no network, so nothing here downloads. The encoder lands in
# /tmp/all-MiniLM-L6-v2.
# A second job on the same machine finds all of it done and skips it. Each
# archive is unpacked beside its place and moved there once complete, so an
# unpack cut off by a timeout is done again, never taken for a finished one.
# The bundle is CPython 3.12's (its compiled modules), and it travels in .device/.
python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || { echo "device_env: the carried spaCy stack is for CPython 3.12; python3 here is $(python3 -V 2>&1)" >&2; exit 1; }
[ -f "$REPO/.device/spacy-gpu-site-cp312.tar.xz" ] \
  || { echo "device_env: no .device/ bundles: run benchmarks/scripts/stage_device.sh, and carry [\".device\"]" >&2; exit 1; }
unpack() {  # unpack ARCHIVE DEST: ARCHIVE's content as the folder DEST
  local archive=$1 dest=$2
  [ -d "$dest" ] && return 0
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  tar -xJf "$archive" -C "$dest.partial" && mv "$dest.partial" "$dest"
}
unpack "$REPO/.device/spacy-gpu-site-cp312.tar.xz" /tmp/site
# The encoder archive holds the folder all-MiniLM-L6-v2 itself.
unpack "$REPO/.device/all-MiniLM-L6-v2-fp16.tar.xz" /tmp/encoder
[ -e /tmp/all-MiniLM-L6-v2 ] || ln -s /tmp/encoder/all-MiniLM-L6-v2 /tmp/all-MiniLM-L6-v2
# PIP_NO_INDEX: with no registry, pip fails at once instead of retrying (`spacy
# package` then builds without `build`'s isolated environment).
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PIP_NO_INDEX=1
source "$REPO/benchmarks/scripts/device_install.sh"
install_package "$REPO" /tmp/site /tmp/spacy-bioner.installed
# From another folder than the tree, whose spacy_bioner would shadow the installed one: the
# stack imports (the bundle leans on the machine for some of its dependencies, httpx
# among them), and spaCy finds the factory through the installed entry points.
(cd / && python3 -c "
import cupy, seqeval, spacy, spacy_transformers, torch, transformers
import spacy_bioner
spacy.blank('en').add_pipe('bio_ner')
print('spacy_bioner', spacy_bioner.__version__, 'from', spacy_bioner.__file__, '| spacy', spacy.__version__,
      '| torch', torch.__version__, '| cupy', cupy.__version__)
") || { echo "device_env: the carried stack does not import here (above)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
