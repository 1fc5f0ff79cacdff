#!/usr/bin/env bash
# One whole benchmark job for the GPU machine (the `device` tool; see
# ../shared/device/README.md): unpack the carried spaCy stack and encoder,
# install this package, convert the benchmark corpora the script reads (the
# benchmark project's convert commands), then run a script of scripts/ on
# GPU 0 with the arguments given: run.py (the systems; the default),
# step_profile.py or crf_schedules.py. Records and the console log go to $OUT
# (the device tool's output folder) or, elsewhere, to benchmarks/results/.
# Jobs chained in one call (`job A; job B`) unpack and install only once;
# jobs started side by side (`job A & job B & wait`, e.g. runs whose F1, not
# time, is wanted) take turns to unpack, install and convert, and log to
# run-TAG.log by their --tag.
#
# Stage first with `bash benchmarks/scripts/stage_device.sh`, then
# call the device tool with
#
#   carry: [".device"]
#   command: bash benchmarks/scripts/device_job.sh --corpus bc5cdr --epochs 5
#   command: bash benchmarks/scripts/device_job.sh step_profile.py --corpus bc5cdr --variant ...
#   command: bash benchmarks/scripts/device_job.sh crf_schedules.py
#
# It runs from any folder. The machine has no spaCy and no network, so nothing
# here downloads.
set -euo pipefail

BENCHMARKS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(dirname "$BENCHMARKS")"
OUT="${OUT:-$BENCHMARKS/results}"

mkdir -p "$OUT"
script=run.py
case "${1:-}" in *.py) script=$1; shift ;; esac
# The corpora to convert: those the script's --corpus options name (both where
# none is named); none for crf_schedules.py, which reads none.
tag=""
corpora=()
previous=""
for arg in "$@"; do
  [ "$previous" = --tag ] && tag=$arg
  [ "$previous" = --corpus ] && corpora+=("$arg")
  case "$arg" in --tag=*) tag=${arg#--tag=} ;; --corpus=*) corpora+=("${arg#--corpus=}") ;; esac
  previous=$arg
done
[ ${#corpora[@]} -gt 0 ] || corpora=(jnlpba bc5cdr)
[ "$script" != crf_schedules.py ] || corpora=()

# The first job unpacks, installs and converts; one started beside it waits,
# then finds all of it done (spaCy skips a conversion whose outputs are there).
if command -v flock > /dev/null; then
  exec 9> /tmp/device-job.lock
  flock 9
fi
source "$BENCHMARKS/scripts/device_env.sh"

cd "$BENCHMARKS"
# One after the other: each conversion rewrites project.lock when it ends. A name
# that is no corpus is left to the script, whose message lists the corpora. Their
# output goes to stderr (the call's output), not a file: weasel says there why a
# conversion failed (a missing dependency, for one).
for corpus in "${corpora[@]}"; do
  case "$corpus" in jnlpba | bc5cdr) python3 -m spacy project run "convert-$corpus" . >&2 ;; esac
done
exec 9>&-

# The scripts that train get the carried encoder and the converted corpora.
trains=(--encoder /tmp/all-MiniLM-L6-v2 --corpus-root corpus)
case "$script" in
  run.py) args=("${trains[@]}" --output-dir "$OUT") ;;
  step_profile.py) args=("${trains[@]}" --output "$OUT/${script%.py}.json") ;;
  crf_schedules.py) args=(--output "$OUT/${script%.py}.json") ;;
  *) args=() ;;  # the others name their outputs in their own arguments
esac
python3 "scripts/$script" --gpu-id 0 "${args[@]}" "$@" 2>&1 | tee "$OUT/${script%.py}${tag:+-$tag}.log"
