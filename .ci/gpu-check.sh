#!/usr/bin/env bash
# GPU check (issue 11 item 6): on a Linux x64 machine with an NVIDIA GPU, runs the tests that need CUDA and the
# training benchmark (step time, tokens/s, MFU against a bf16 matmul peak measured in the same process, peak memory),
# then a one-rank FULL_SHARD step (parameter sharding per decoder layer).
# See docs/gpu-check.md. It has NOT been run yet: no GPU machine was available when it was written.
#
#   .ci/gpu-check.sh prepare DIR   on a build machine with the .NET 10 SDK and a NuGet source that serves
#                                  libtorch-cuda-12.8-linux-x64 2.10.0: self-contained CUDA publishes into DIR
#   .ci/gpu-check.sh run DIR       on the GPU machine (no .NET needed): runs what `prepare` wrote
#   .ci/gpu-check.sh all           both, on a GPU machine that also has the SDK and that NuGet source
#
# Environment: BAGEL_TOKENIZER (a Qwen2.5 tokenizer folder; default ../shared/data/tokenizer/qwen2.5),
# GPU_CHECK_LAYERS (24: Qwen2.5-0.5B's depth), GPU_CHECK_TOKENS (4096), GPU_CHECK_STEPS (5).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

prepare() {
  local out=$1
  command -v dotnet >/dev/null || { echo "gpu-check: 'prepare' needs the .NET 10 SDK" >&2; exit 1; }
  mkdir -p "$out"
  # The CUDA backend swap: BagelTorchBackend=cuda makes Directory.Build.targets reference libtorch-cuda-12.8-linux-x64
  # instead of libtorch-cpu-linux-x64 (the managed TorchSharp package is the same). The restore fails with NU1101
  # when the configured NuGet source does not serve it (this repository's CI source does not).
  local common=(-c Release -r linux-x64 --self-contained true -p:BagelTorchBackend=cuda)
  dotnet publish Bagel.Tests "${common[@]}" -o "$out/tests"
  dotnet publish Bagel.Samples/Bagel.Benchmarks "${common[@]}" -o "$out/bench"
  local tokenizer=${BAGEL_TOKENIZER:-../shared/data/tokenizer/qwen2.5}
  if [ -f "$tokenizer/vocab.json" ]; then
    mkdir -p "$out/tokenizer" && cp "$tokenizer"/* "$out/tokenizer/"
  else
    echo "gpu-check: no tokenizer at $tokenizer (set BAGEL_TOKENIZER); 'run' will need one" >&2
  fi
  echo "gpu-check: prepared $out ($(du -sh "$out" | cut -f1)); copy it to the GPU machine and run: .ci/gpu-check.sh run DIR"
}

run() {
  local dir=$1 rc=0
  [ -x "$dir/tests/Bagel.Tests" ] && [ -x "$dir/bench/Bagel.Benchmarks" ] || { echo "gpu-check: $dir lacks tests/ or bench/; run 'prepare' first" >&2; exit 1; }
  command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: no NVIDIA driver on this machine" >&2; exit 1; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

  # 1. The tests that need CUDA carry [Trait("Requires", "cuda")]; without a GPU they skip, so a skip here is a failure.
  local log; log=$(mktemp)
  set +e
  "$dir/tests/Bagel.Tests" --filter-trait "Requires=cuda" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if grep -qE '^\s+skipped: [1-9]' "$log"; then echo "gpu-check: CUDA tests were skipped: libtorch sees no CUDA device" >&2; rc=1; fi

  # 2. The training benchmark on the GPU, per-tensor vs fused optimizer, with GPU memory sampled by nvidia-smi.
  local tokenizer=${BAGEL_TOKENIZER:-$dir/tokenizer} samples; samples=$(mktemp)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$samples" &
  local sampler=$!
  set +e
  "$dir/bench/Bagel.Benchmarks" train --parts build,throughput --device cuda --peak-dtype bfloat16 \
    --layers "${GPU_CHECK_LAYERS:-24}" --tokens "${GPU_CHECK_TOKENS:-4096}" --measure-steps "${GPU_CHECK_STEPS:-5}" --tokenizer "$tokenizer"
  local bench=$?
  set -e
  kill "$sampler" 2>/dev/null || true
  echo "gpu-check: peak GPU memory used (nvidia-smi, whole device, sampled every 200 ms): $(sort -n "$samples" | tail -1) MiB"
  [ "$bench" -ne 0 ] && rc=$bench

  # 3. A FULL_SHARD step with one rank on the GPU (parameter sharding per decoder layer, issue 14): 2 steps and a
  #    checkpoint of the composite at the real Qwen2.5-0.5B dimensions, fp32, GPU memory read through cudaMemGetInfo.
  set +e
  "$dir/bench/Bagel.Benchmarks" sharding-step Parameters "${GPU_CHECK_LAYERS:-24}" 151665 "${GPU_CHECK_TOKENS:-4096}" cuda
  local shard=$?
  set -e
  [ "$shard" -ne 0 ] && rc=$shard
  echo "gpu-check: $([ "$rc" -eq 0 ] && echo passed || echo FAILED)"
  return "$rc"
}

case "${1:-}" in
  prepare) [ $# -eq 2 ] || usage; prepare "$2" ;;
  run) [ $# -eq 2 ] || usage; run "$2" ;;
  all) dir=$(mktemp -d); prepare "$dir"; run "$dir" ;;
  *) usage ;;
esac
