# Sourced by device_env.sh: install this package into the carried site folder
# without pip or setuptools. The package's modules are the tree's own, which
# travel anyway; .device/ carries only the metadata (a dist-info folder, with
# the entry points by which spaCy finds `bio_ner`) of a wheel that
# stage_device.sh built from these very sources, so the wheel's copy of the
# modules (~200 KB of the device tool's 64 MiB) does not travel. Without a
# matching dist-info, pip builds the package with the machine's setuptools,
# and failing that installs it editable (../shared/device/README.md's way).
install_package() {  # install_package REPO SITE MARKER: done again whenever the sources differ from MARKER's
  local repo=$1 site=$2 marker=$3 stamp distinfo
  source "$repo/scripts/package_stamp.sh"
  stamp=$(package_stamp "$repo")
  [ "$(cat "$marker" 2>/dev/null)" = "$stamp" ] && return 0
  # A copy installed before would shadow any other install (the site folder comes first).
  rm -rf "$site/spacy_bioner" "$site"/spacy_bioner-*.dist-info
  distinfo=$(compgen -G "$repo/.device/spacy_bioner-*.dist-info" | head -n 1 || true)
  if [ -n "$distinfo" ] && [ "$(cat "$repo/.device/spacy-bioner.stamp" 2>/dev/null)" = "$stamp" ]; then
    mkdir -p "$site"
    cp -r "$repo/spacy_bioner" "$distinfo" "$site/"
    find "$site/spacy_bioner" -name __pycache__ -prune -exec rm -rf {} +
  else
    echo "device_install: no metadata of these sources in .device/" \
      "(benchmarks/scripts/stage_device.sh): pip install" >&2
    python3 -m pip install -q --no-deps --no-build-isolation --no-index "$repo" \
      || python3 -m pip install -q --no-deps --no-build-isolation --no-index -e "$repo"
  fi
  echo "$stamp" > "$marker"
}

stage_metadata() {  # stage_metadata WHEEL DIR: the wheel's dist-info folder alone, into DIR
  # METADATA without its body, the README (40 KB of the device tool's 64 MiB): what reads
  # it here (importlib.metadata, entry points) reads the headers.
  python -c 'import pathlib, sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
names = [n for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info")]
wheel.extractall(sys.argv[2], names)
metadata = pathlib.Path(sys.argv[2], next(n for n in names if n.endswith("/METADATA")))
metadata.write_text(metadata.read_text(encoding="utf8").split("\n\n", 1)[0] + "\n", encoding="utf8")' "$1" "$2"
}
