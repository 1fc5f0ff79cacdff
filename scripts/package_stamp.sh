# One stamp of the package's sources, sourced by the project's `stamp` command
# (the commands that run the library depend on it: they rerun when a source
# changes, not when Python writes its bytecode caches) and by the GPU jobs'
# stage_device.sh and device_env.sh (the machine installs the carried wheel only
# if it was built from the sources it runs with).
package_stamp() {  # package_stamp REPO: 40 hex digits, of each source's name and content
  (cd "$1" && for f in setup.py $(find spacy_bioner -name '*.py' | LC_ALL=C sort); do
    printf '%s\0' "$f"; cat "$f"; done | sha1sum | cut -c1-40)
}
