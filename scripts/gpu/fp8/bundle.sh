#!/usr/bin/env bash
# Builds the FP8 benchmark/self-check as a self-contained linux-x64 bundle for the GPU machine (which has
# no .NET): TorchSharp without a bundled libtorch (TorchBackend=none), PyTorch's libtorch is used there.
# Run on the build machine from the repository root:  scripts/gpu/fp8/bundle.sh
# Output: .dist/fp8bench.tar.xz (git-ignored; hand it to the device run with carry [".dist/fp8bench.tar.xz"]).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rm -rf .dist/fp8bench
dotnet publish benchmarks/Fp8/Fp8Bench.csproj -c Release -r linux-x64 --self-contained \
  -p:TorchBackend=none -o .dist/fp8bench
tar -C .dist -cJf .dist/fp8bench.tar.xz fp8bench
ls -lh .dist/fp8bench.tar.xz
