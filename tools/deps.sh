#!/bin/sh
# Installs the Debian packages named as arguments when they are missing.
# As root on Debian: `apt-get update` once, then `apt-get install -y` of the
# missing ones. Elsewhere: says what is missing and stops.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "goro: installing missing packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq $missing >/dev/null || {
    echo "goro: apt-get install failed for:$missing" >&2; exit 1; }
else
  echo "goro: missing packages:$missing" >&2
  echo "goro: install them (Debian: apt-get install$missing) or run make as root" >&2
  command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian: let the build try
  exit 1
fi
