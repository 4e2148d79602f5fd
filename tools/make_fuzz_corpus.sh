#!/bin/bash
# Makes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): small valid
# inputs of each format, and a few near-misses. Needs a Release build for the checkpoint.
# usage: bash tools/make_fuzz_corpus.sh [build/mambaprune]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/mambaprune}
out=tests/fuzz/corpus
rm -rf "$out" && mkdir -p "$out"/{fuzz_yaml_config,fuzz_safetensors,fuzz_config_json,fuzz_checkpoint,fuzz_token_file}

# YAML configs: the shipped ones, the test fixtures, and one with a sweep, anchors and flow text.
cp configs/train_copying.yaml configs/prune_cubic.yaml configs/ablation_alpha.yaml tests/fixtures/config/*.yaml \
    "$out/fuzz_yaml_config/"
printf 'base: &b {lr: 1e-3}\noptim: *b\nprune: {method: gradient, include: [in_proj, "*.A_log"], component_sparsity: {in_proj: 0.6}}\nsweep: {prune.alpha: [0, 1]}\n' \
    > "$out/fuzz_yaml_config/flow_anchor.yaml"

# config.json of transformers, and a smaller one.
cp tests/fixtures/hf_tiny/config.json "$out/fuzz_config_json/hf_tiny.json"
printf '{"model_type": "mamba", "hidden_size": 8, "num_hidden_layers": 1, "vocab_size": 16, "state_size": 2, "conv_kernel": 2, "expand": 2, "time_step_rank": 1, "layer_norm_epsilon": 1e-5, "tie_word_embeddings": true}\n' \
    > "$out/fuzz_config_json/small.json"

# safetensors: small files with every dtype the reader converts.
python3 - "$out/fuzz_safetensors" <<'PY'
import json, struct, sys
def write(path, tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata: header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
d = sys.argv[1]
write(d + "/f32.safetensors", {"a": ("F32", [2, 3], struct.pack("<6f", *range(6))), "s": ("F32", [], struct.pack("<f", 1.5))},
      {"format": "pt"})
write(d + "/mixed.safetensors", {"h": ("F16", [4], struct.pack("<4H", 0x3c00, 0xc000, 0x7c00, 0x0001)),
                                 "b": ("BF16", [2], struct.pack("<2H", 0x3f80, 0x4000)),
                                 "i": ("I64", [2], struct.pack("<2q", -1, 7)), "j": ("I32", [1], struct.pack("<i", 3)),
                                 "d": ("F64", [1], struct.pack("<d", 0.25))})
write(d + "/empty.safetensors", {})
PY

# Token files: an llm.c file, byte text, and a header whose count lies.
python3 - "$out/fuzz_token_file" <<'PY'
import struct, sys
d = sys.argv[1]
ids = [1, 5, 2, 9, 3, 3, 0, 7, 8, 1, 2, 4]
head = struct.pack("<3i", 20240520, 1, len(ids)) + b"\0" * (256 * 4 - 12)
open(d + "/tokens.bin", "wb").write(head + struct.pack("<%dH" % len(ids), *ids))
open(d + "/short_count.bin", "wb").write(head[:8] + struct.pack("<i", 99) + head[12:] + struct.pack("<4H", 1, 2, 3, 4))
open(d + "/text.txt", "wb").write(b"First Citizen:\nBefore we proceed any further, hear me speak.\n")
PY

# A checkpoint of a tiny model (2 training steps), and one of a pruning run with masks.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "" > "$work/tiny.yaml"
common=(--set model.d_model=8 --set model.n_layer=1 --set model.d_state=2 --set model.d_conv=2 --set train.seqlen=40
        --set train.batch_size=1 --set train.steps=2 --set train.eval_batches=1 --set data.val_sequences=1
        --set data.n_memorize=4 --set log.dir="$work")
"$bin" train --config "$work/tiny.yaml" "${common[@]}" --set log.name=dense 2>/dev/null
"$bin" train --config "$work/tiny.yaml" "${common[@]}" --set log.name=pruned --set prune.method=gradient \
    --set prune.prune_every=1 --set prune.grad_accum_batches=1 --set stability.enabled=false 2>/dev/null
cp "$work/dense/ckpt-00000002.h5" "$out/fuzz_checkpoint/dense.h5"
cp "$work/pruned/ckpt-00000002.h5" "$out/fuzz_checkpoint/pruned.h5"
ls -l "$out"/*
