#!/bin/sh
# Installs the built project into a temporary DESTDIR, then builds a plugin
# and a small host outside the tree with a plain cc and
# `pkg-config --cflags --libs jarvis-events-1`, installs the plugin into the
# pkg-config `pluginsdir`, and has the host load it by name.
#
# Usage: test-out-of-tree.sh BUILD_DIR SOURCES_DIR [SANITIZERS]
set -eu

build_dir=$1
sources_dir=$2
sanitizers=${3:-none}

if [ "$sanitizers" != none ]; then
  echo "SKIP: the library is built with -fsanitize=$sanitizers, which a plain cc cannot link"
  exit 77
fi

for tool in cc pkg-config meson; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed; the out-of-tree build needs it"
    exit 77
  fi
done

# Modes of installed directories must pass the plugin trust checks.
umask 022

work=$(mktemp -d "${TMPDIR:-/tmp}/jarvis-out-of-tree-XXXXXX")
trap 'rm -rf "$work"' EXIT

destdir=$work/destdir
meson install -C "$build_dir" --no-rebuild --quiet --destdir "$destdir" >"$work/install.log" 2>&1 || {
  cat "$work/install.log"
  echo "FAIL: meson install into $destdir failed"
  exit 1
}

pc_file=$(find "$destdir" -name jarvis-events-1.pc | head -n 1)
if [ -z "$pc_file" ]; then
  echo "FAIL: jarvis-events-1.pc was not installed under $destdir"
  exit 1
fi

# The .pc file finds its prefix from its own place, so the staged copy
# under DESTDIR is used as it is.
PKG_CONFIG_PATH=$(dirname "$pc_file")
export PKG_CONFIG_PATH
pkg() {
  pkg-config "$@" jarvis-events-1
}

libdir=$(pkg --variable=libdir)
pluginsdir=$(pkg --variable=pluginsdir)
case "$pluginsdir" in
  "$destdir"/*) ;;
  *) echo "FAIL: pluginsdir $pluginsdir is outside the DESTDIR"; exit 1 ;;
esac

mkdir -p "$pluginsdir"
# shellcheck disable=SC2046 # pkg-config output is a list of words
cc -shared -fPIC -Wall -Werror -o "$pluginsdir/hello.so" "$sources_dir/hello.c" $(pkg --cflags --libs)
# shellcheck disable=SC2046
cc -Wall -Werror -o "$work/driver" "$sources_dir/driver.c" -Wl,-rpath,"$libdir" $(pkg --cflags --libs)

# The installed plugins directory compiled into the library is the final
# one, not its DESTDIR copy, so the host finds the plugin through
# JARVIS_PLUGIN_PATH, the next directory of the default search path.
unset LD_LIBRARY_PATH
JARVIS_PLUGIN_PATH=$pluginsdir
export JARVIS_PLUGIN_PATH
XDG_DATA_HOME=$work/xdg-data
export XDG_DATA_HOME

"$work/driver"
echo "PASS: the out-of-tree plugin was built with pkg-config and loaded by name"
