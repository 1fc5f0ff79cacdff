#!/usr/bin/env bash
# Stage what a GPU-machine job carries in .device/ (git-ignored): the shared
# bundles (../shared/device/stage.sh: the spaCy stack and the encoder) and the
# metadata (dist-info) of a wheel of this package built here, with the stamp of
# the sources it was built from. device_install.sh installs the tree's modules
# with that metadata, so that the machine, which has no registry, needs neither
# pip's build step nor setuptools. Run
# from anywhere in the repository, before each device call whose sources
# changed; then call the device tool with carry [".device"].
set -euo pipefail
REPO="$(git rev-parse --show-toplevel)"
cd "$REPO"
bash ../shared/device/stage.sh
rm -rf .device/spacy_bioner-*.whl .device/spacy_bioner-*.dist-info
# pip builds in the tree and would pack what an earlier build left in build/lib
# (a module since deleted); build/ is git-ignored, so it does not travel.
rm -rf build
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
python -m pip wheel -q --no-deps --no-build-isolation -w "$wheels" "$REPO" 2>&1 | grep -v "^WARNING: Running pip as" || true
# Its dist-info alone: the modules travel in the tree.
source benchmarks/scripts/device_install.sh
stage_metadata "$(ls "$wheels"/spacy_bioner-*.whl)" .device
ls -d .device/spacy_bioner-*.dist-info > /dev/null
source scripts/package_stamp.sh
package_stamp "$REPO" > .device/spacy-bioner.stamp
ls -l .device
# What a call carries: the tracked files, the untracked ones git does not ignore, and .device.
limit=$((64 * 1024 * 1024))
# (A tracked file deleted but not yet committed is listed and does not travel.)
total=$(python -c 'import os, subprocess
files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, check=True).stdout.split(b"\0")
files += [os.path.join(root, name) for root, _, names in os.walk(b".device") for name in names]
print(sum(os.path.getsize(f) for f in files if f and os.path.isfile(f)))')
echo "a call carries $total bytes; $((limit - total)) left of the device tool's 64 MiB"
[ "$total" -lt "$limit" ] || { echo "stage_device: over the device tool's 64 MiB" >&2; exit 1; }
