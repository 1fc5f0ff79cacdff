#!/usr/bin/env bash
# The main project's GPU recipe on the GPU machine, command by command:
#
#   spacy project run all . --vars.config bioner --vars.gpu_id 0
#
# on the carried encoder (/tmp/all-MiniLM-L6-v2), through `package`
# (install-test is left out: the machine cannot build a virtual environment
# without a registry); right after `evaluate`, GPU inference words/s of the
# trained pipeline against the Hugging Face pipeline at batch 32 and 128,
# where its nlp.pipe time goes (the host's work against the encoder's),
# `annotate` (local engine) against plain nlp.pipe on 2,000 abstracts, and
# the time and GPU memory of one 1,000,000-character document. Stage with
# `bash benchmarks/scripts/stage_device.sh`, then call the device tool with
#
#   carry: [".device"]
#   command: bash benchmarks/scripts/device_project_job.sh [more --vars.NAME VALUE]
#
# To training/device/: times.tsv (command, seconds, exit status), each
# command's log, metrics/, the pipeline's meta.json, the built wheels' sizes
# and the five speed records. On the device machine all of it is packed into
# $OUT/project-job.tgz after each command and every 30 s during one, so that a
# job cut off keeps what it has: the device tool returns 8 files at most. The job
# exits 1 where any command failed (times.tsv says which).
set -uo pipefail

BENCHMARKS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(dirname "$BENCHMARKS")"
RESULTS="$REPO/training/device"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
pack() {  # the results so far, as $OUT/project-job.tgz (renamed into place once written)
  [ -n "${OUT:-}" ] || return 0
  # Status 1: a log changed while it was read (a command still running), which is fine.
  tar -czf "$OUT/project-job.tgz.partial" -C "$RESULTS" . 2> /dev/null
  [ $? -le 1 ] && mv "$OUT/project-job.tgz.partial" "$OUT/project-job.tgz"
}
set -e  # a failed unpack or install ends the job; after it, each command's status is recorded
source "$BENCHMARKS/scripts/device_env.sh"
set +e

cd "$REPO"
vars=(--vars.config bioner --vars.gpu_id 0 --vars.transformer /tmp/all-MiniLM-L6-v2 "$@")
printf 'command\tseconds\texit\n' > "$RESULTS/times.tsv"
timed() {  # timed NAME COMMAND...: run, log to NAME.log, append the time, pack; returns the exit status
  local name=$1 start status tenths packer
  shift
  start=$(date +%s%N)
  # Packed every 30 s meanwhile: a command cut off by the call's time limit (train) keeps its log so far.
  # Stopped between two packs, never during one (its trap runs once tar is done), and waited for.
  ( trap 'kill $(jobs -p) 2> /dev/null; exit 0' TERM; while :; do sleep 30 & wait $!; pack; done ) &
  packer=$!
  "$@" > "$RESULTS/$name.log" 2>&1
  status=$?
  kill "$packer" 2> /dev/null
  wait "$packer" 2> /dev/null
  tenths=$(( ($(date +%s%N) - start) / 100000000 ))
  printf '%s\t%d.%d\t%d\n' "$name" $(( tenths / 10 )) $(( tenths % 10 )) "$status" >> "$RESULTS/times.tsv"
  pack
  return "$status"
}
# A warm machine keeps ignored outputs between calls: what a failed command
# would leave behind must not pass for this run's.
rm -rf training/model-best training/model-last metrics packages
# The speed scripts run as soon as the pipeline is evaluated, before visualize and
# package: a call cut off late keeps the GPU words/s and the scores.
measure_speed() {
  cp -r metrics "$RESULTS/" 2>/dev/null
  cp training/model-best/meta.json "$RESULTS/meta.json" 2>/dev/null
  timed inference python3 benchmarks/scripts/inference.py --model training/model-best --gpu-id 0 \
    --corpus-root corpus --batch-size 32 --batch-size 128 --repeats 3 --output-dir "$RESULTS" || failed=1
  timed pipe-profile python3 benchmarks/scripts/pipe_profile.py --model training/model-best --gpu-id 0 \
    --corpus-root corpus --output-dir "$RESULTS" || failed=1
  timed annotate-speed python3 benchmarks/scripts/annotate_speed.py --model training/model-best --gpu-id 0 \
    --n-docs 2000 --out "$RESULTS/annotate-speed-gpu.json" || failed=1
  timed long-document python3 benchmarks/scripts/long_document.py training/model-best --gpu-id 0 \
    --chars 1000000 --corpus-root corpus --output "$RESULTS/long-document-gpu.json" || failed=1
  timed inference-bfloat16 python3 benchmarks/scripts/inference.py --model training/model-best --gpu-id 0 \
    --corpus-root corpus --batch-size 32 --batch-size 128 --repeats 3 --precision bfloat16 --tag bfloat16 \
    --output-dir "$RESULTS" || failed=1
}
failed=0
for command in stamp convert train evaluate visualize package; do
  # A failed visualize or package still leaves the scores; any other failure ends the run.
  if timed "$command" python3 -m spacy project run "$command" . "${vars[@]}"; then
    [ "$command" = evaluate ] && measure_speed
  else
    failed=1
    case "$command" in visualize | package) ;; *) break ;; esac
  fi
done
# Again after the loop: visualize adds metrics/samples.html.
[ -d metrics ] && cp -r metrics "$RESULTS/" 2>/dev/null
[ -d packages ] && find packages -name '*.whl' -printf '%s\t%p\n' > "$RESULTS/wheels.tsv" 2>/dev/null
pack
cat "$RESULTS/times.tsv"
exit "$failed"
