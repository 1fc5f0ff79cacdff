# One stamp of the package's sources, sourced by the project's `stamp` command
# (the commands that run the library depend on it: they rerun when a source
# changes, not when Python writes its bytecode caches) and by the GPU jobs'
# stage_device.sh and device_env.sh (the machine installs the carried wheel only
# if it was built from the sources it runs with).
package_stamp() {  # package_stamp REPO: 40 hex digits, of each source's name and content
  local sha1
  # sha1sum (GNU coreutils), or shasum (macOS): without either, an empty stamp would pass for one.
  if command -v sha1sum > /dev/null; then sha1=(sha1sum); elif command -v shasum > /dev/null; then sha1=(shasum -a 1)
  else echo "package_stamp: needs sha1sum or shasum" >&2; return 1; fi
  (set -o pipefail; cd "$1" && for f in setup.py $(find spacy_bioner -name '*.py' | LC_ALL=C sort); do
    printf '%s\0' "$f"; cat "$f"; done | "${sha1[@]}" | cut -c1-40)
}
