#!/usr/bin/env bash
# Install Fashion-MNIST from Debian's dataset-fashion-mnist package, where apt exists.
# The files land in /usr/share/datasets/fashion-mnist, one of learnact's data sources.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not found: put the Fashion-MNIST IDX files in \$LEARNACT_DATA/fashion-mnist instead" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
  || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null; }
echo "installed Fashion-MNIST into $dir"
