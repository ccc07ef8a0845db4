#!/usr/bin/env bash
# Publishes PostTrain for a Linux x64 machine that brings its own libtorch (e.g. the GPU machine with PyTorch 2.11):
# self-contained (its own .NET runtime), without TorchSharp-cpu's libtorch: the `posttrain` CLI plus the FP8,
# generation and sandbox benchmarks, the dataset generator (PostTrain.DatasetGen) and the sandbox worker, in one folder (they share the runtime), packed as .dist/posttrain-linux-x64.tar.xz.
# Run it there with scripts/gpu/run.sh, which points LD_LIBRARY_PATH at PyTorch's libtorch.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.dist/posttrain-linux-x64
rm -rf "$out" && mkdir -p .dist
for project in src/PostTrain.Cli benchmarks/Fp8 benchmarks/Generation benchmarks/Sandbox datasets/tools/PostTrain.DatasetGen; do
  dotnet publish "$project" -c Release -r linux-x64 --self-contained -p:TorchBackend=none -p:PatchLibTorchSharp=always \
    -p:DebugType=none -o "$out" --nologo -v quiet
done
# the sandbox worker with its own apphost on the same runtime files: that machine has no dotnet host to run its dll
dotnet publish src/PostTrain.Sandbox.Worker -c Release -r linux-x64 --self-contained -p:UseAppHost=true -p:DebugType=none \
  -o "$out" --nologo -v quiet
rm -rf "$out"/runtimes/{win,osx,linux-arm,linux-arm64,linux-musl}* 2>/dev/null || true
# xz -9e: the bundle travels to the GPU machine with the working tree under a 64 MiB limit (46 MB vs 48.5 at -6)
tar -C .dist -cf - posttrain-linux-x64 | xz -9e -T2 > .dist/posttrain-linux-x64.tar.xz.tmp
mv .dist/posttrain-linux-x64.tar.xz.tmp .dist/posttrain-linux-x64.tar.xz
ls -la .dist/posttrain-linux-x64.tar.xz
