# Sourced by stage_device.sh and device_env.sh: one stamp of the package's
# sources, so that the GPU machine installs the carried wheel only if it was
# built from the sources it runs with.
package_stamp() {  # package_stamp REPO: 40 hex digits
  (cd "$1" && cat setup.py $(find spacy_bioner -name '*.py' | LC_ALL=C sort) | sha1sum | cut -c1-40)
}
