#!/usr/bin/env bash
# Install Debian packages the project uses, where apt exists and they are missing:
#   dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist (the offline default data)
#   chromium              -> /usr/bin/chromium (the report page's browser test)
#   g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#                         -> the 64-bit ARM SIMD check (tests/test_simd_portable.py)
# Uses sudo when not root. Without apt it says what to do instead and succeeds.
set -euo pipefail
missing=()
for pkg in "$@"; do
  case "$pkg" in
    dataset-fashion-mnist) [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=("$pkg") ;;
    chromium) command -v chromium >/dev/null 2>&1 || missing+=("$pkg") ;;
    *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not found; install ${missing[*]} yourself (Fashion-MNIST can also go in \$LEARNACT_DATA/fashion-mnist)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
  || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
echo "installed: ${missing[*]}"
