#!/usr/bin/env bash
# Makes sure the NASM assembler (Debian package nasm) is installed: with it, mozjpeg-sys builds
# libjpeg-turbo's x86 SIMD routines, which decode JPEGs to the same bytes as its C code about twice
# as fast (Pillow's libjpeg-turbo uses them too). Without it the build still works, on the C code
# (mozjpeg-sys prints a warning). Idempotent; only x86 needs it.
set -euo pipefail
case "$(uname -m)" in x86_64|i?86) ;; *) exit 0 ;; esac
command -v nasm >/dev/null && exit 0
exec "$(dirname "${BASH_SOURCE[0]}")/ensure-debian-package.sh" nasm /usr/bin/nasm \
  "the assembler for libjpeg-turbo's SIMD JPEG decoding"
