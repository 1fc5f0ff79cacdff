#!/usr/bin/env bash
# One whole benchmark job for the GPU machine (the `device` tool; see
# ../shared/device/README.md): unpack the carried spaCy stack and encoder,
# install this package, convert the two benchmark corpora from assets/ (in
# parallel), then run `python -m benchmarks.run` on GPU 0 with the arguments
# given, writing the results to $OUT. Stage first with
# `../shared/device/stage.sh`, then call the device tool with
#
#   carry: [".device"]
#   command: bash benchmarks/device_job.sh --corpus bc5cdr --epochs 5
#
# The machine has no spaCy and no network, so nothing here downloads.
set -euo pipefail

mkdir -p /tmp/site
tar -xJf .device/spacy-gpu-site-cp312.tar.xz -C /tmp/site
tar -xJf .device/all-MiniLM-L6-v2-fp16.tar.xz -C /tmp
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# Not editable: an editable install fails with the carried setuptools.
python3 -m pip install -q --no-deps --no-build-isolation --no-index .

convert() { python3 -m spacy_bioner convert "$@" > /dev/null; }
pids=()
convert jnlpba assets/jnlpba/Genia4ERtask2.iob2.gz corpus/jnlpba/train.spacy \
  --dev-docs 200 --dev-output corpus/jnlpba/dev.spacy & pids+=($!)
convert jnlpba assets/jnlpba/Genia4EReval2.iob2.gz corpus/jnlpba/test.spacy & pids+=($!)
for split in train:train devel:dev test:test; do
  convert iob "assets/bc5cdr/iob/${split%%:*}.tsv.gz" "corpus/bc5cdr-iob/${split##*:}.spacy" \
    --spans-key bc5cdr --n-sents 10 & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done  # one failed conversion stops the job

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m benchmarks.run --gpu-id 0 --encoder /tmp/all-MiniLM-L6-v2 --corpus-root corpus \
  --output-dir "$OUT" "$@" 2>&1 | tee "$OUT/benchmark.log"
