#!/bin/sh
# Installs the built project into a temporary DESTDIR and checks that the
# installed jarvis-host names the installed library directory as its
# run-time search path, so that it starts from any prefix. The plugins
# must not carry one: they use the library that the host already loaded.
#
# Usage: test-install-rpath.sh BUILD_DIR LIBDIR
set -eu

build_dir=$1
libdir=$2

for tool in meson readelf; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed; the install check needs it"
    exit 77
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/jarvis-install-rpath-XXXXXX")
trap 'rm -rf "$work"' EXIT

destdir=$work/destdir
meson install -C "$build_dir" --no-rebuild --quiet --destdir "$destdir" >"$work/install.log" 2>&1 || {
  cat "$work/install.log"
  echo "FAIL: meson install into $destdir failed"
  exit 1
}

host=$(find "$destdir" -type f -name jarvis-host | head -n 1)
if [ -z "$host" ]; then
  echo "FAIL: no jarvis-host was installed under $destdir"
  exit 1
fi

runpath=$(readelf -d "$host" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]$/\2/p')
if [ "$runpath" != "$libdir" ]; then
  echo "FAIL: the installed jarvis-host has the run-time path '$runpath', expected '$libdir'"
  exit 1
fi

for plugin in $(find "$destdir" -type f -name 'jarvis-plugin-*.so'); do
  if readelf -d "$plugin" | grep -q 'R\(UN\)\?PATH'; then
    echo "FAIL: the installed plugin $plugin has a run-time path; only the host should"
    exit 1
  fi
done

echo "PASS: the installed jarvis-host searches $libdir"
