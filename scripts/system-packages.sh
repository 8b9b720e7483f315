#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, where they are missing and we are allowed to:
# Java (COCO caption metrics), Chromium + driver (browser tests), Graphviz (model diagrams),
# exiftool (photo metadata; run as a separate program),
# Redis (shared rate limits), PostgreSQL (database outage tests) and a C compiler (pidng, which writes the
# test DNG files, is built from source).
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing system packages (${need[*]}); tests that need them are skipped. Install them with apt-get as root." >&2
  exit 0
fi
echo "installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
