#!/usr/bin/env bash
# The container engine with this project's settings: podman when installed (its storage under
# .cache/containers/, vfs driver, builds in chroot isolation, containers under runc with bounded
# open-files and process limits: podman's defaults exceed the hard limits of a host without
# CAP_SYS_RESOURCE, and runc then refuses to start), else docker when its daemon answers.
# Used by the Makefile and the image test.
#
#   deploy/image/engine.sh build|run|...  ARGS       same arguments as podman / docker
#   deploy/image/engine.sh --which                   prints podman, docker, or nothing (exit 1)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

if command -v podman > /dev/null; then
  which=podman
elif command -v docker > /dev/null && docker info > /dev/null 2>&1; then
  which=docker
else
  [ "${1:-}" = --which ] && exit 1
  echo "engine.sh: no container engine: install podman (apt-get install podman) or start docker" >&2
  exit 1
fi
[ "${1:-}" = --which ] && { echo "$which"; exit 0; }

if [ "$which" = docker ]; then
  exec docker "$@"
fi
store="$ROOT/.cache/containers"
podman=(podman --storage-driver vfs --root "$store/storage" --runroot "$store/run")
case "${1:-}" in
  # vfs stores every layer as a full copy: committing only the final image (--layers=false) built
  # this image in 146 s where caching each step's layer took several minutes more.
  build) shift; exec "${podman[@]}" build --isolation chroot --network host --layers=false "$@" ;;
  run)   shift; exec "${podman[@]}" run --runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$@" ;;
  *)     exec "${podman[@]}" "$@" ;;
esac
