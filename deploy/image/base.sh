#!/usr/bin/env bash
# Build a local base image for deploy/Dockerfile when no registry can be reached: a minimal Debian
# bookworm root filesystem made with debootstrap from Debian's package mirror (Debian's own python3,
# 3.11 in bookworm), imported into podman (or docker). Real builds keep the pinned python image.
#
#   deploy/image/base.sh [TAG]        default TAG: localhost/gorgias-worker-base:bookworm
#
# The rootfs is cached under .cache/image/; delete it to rebuild from scratch.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TAG="${1:-localhost/gorgias-worker-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="$ROOT/.cache/image"
ROOTFS="$CACHE/rootfs"
ENGINE="$ROOT/deploy/image/engine.sh"
PACKAGES="python3,python3-venv,python-is-python3,ca-certificates"

fail() { echo "base.sh: $*" >&2; exit 1; }
engine() { "$ENGINE" "$@"; }

if engine image inspect "$TAG" > /dev/null 2>&1; then
  echo "base image $TAG already present"
  exit 0
fi

if [ ! -f "$CACHE/rootfs.tar" ]; then
  command -v debootstrap >/dev/null || fail "needs debootstrap (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || fail "debootstrap needs root"
  rm -rf "$ROOTFS" && mkdir -p "$CACHE"
  echo "debootstrap bookworm ($PACKAGES) from $MIRROR into $ROOTFS"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
    || fail "debootstrap failed, see $CACHE/debootstrap.log"
  # Keep the image small: no apt lists, caches or docs.
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/usr/share/doc/* \
         "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
  tar --numeric-owner -C "$ROOTFS" -cf "$CACHE/rootfs.tar.partial" . && mv "$CACHE/rootfs.tar.partial" "$CACHE/rootfs.tar"
  rm -rf "$ROOTFS"
fi

engine import --change 'CMD ["/bin/bash"]' "$CACHE/rootfs.tar" "$TAG" > /dev/null
echo "imported base image $TAG"
