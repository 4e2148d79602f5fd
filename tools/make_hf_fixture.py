#!/usr/bin/env python3
"""Builds the transformers-interop fixtures of tests/fixtures/ with the real transformers library.

A tiny random MambaForCausalLM (hidden 32, 2 layers, vocab 64, state 16, expand 2, conv 4, dt_rank
auto = 2) is run in float32 on the CPU (transformers' sequential slow path, not the CUDA kernels)
on fixed tokens of shape (2, 12). It writes, under --out:

  hf_tiny/                          save_pretrained: config.json + model.safetensors (tied head)
  hf_tiny_sharded/                  the same weights in >= 2 shards + model.safetensors.index.json
  hf_tiny_reference.safetensors     tokens, targets, logits, loss and grad.<param> (see below)

Reference tensors:
  tokens   I64 (2, 12)       input ids
  targets  I64 (2, 12)       tokens shifted left by one, -1 (ignored) at the last position
  logits   F32 (2, 12, 64)
  loss     F32 (1,)          mean next-token cross-entropy over the 2*11 positions
                             (transformers' labels=tokens loss)
  grad.<name> F32            d loss / d parameter, backbone names; the embedding's gradient
                             includes the tied output head's contribution

Re-run (needs torch, transformers, safetensors; no GPU needed):
  python3 tools/make_hf_fixture.py --out tests/fixtures
"""
import argparse
import copy
import json
import os
import shutil

import torch

import safetensors
import transformers
from safetensors.torch import save_file, load_file
from transformers import MambaConfig, MambaForCausalLM

SEED = 0
TOKENS_SEED = 1234
BATCH, SEQLEN = 2, 12
SHARD_BYTES = 40 * 1000  # small enough that the ~90 KB of weights need >= 2 shards


def build_model():
    config = MambaConfig(
        vocab_size=64,
        hidden_size=32,
        state_size=16,
        num_hidden_layers=2,
        expand=2,
        conv_kernel=4,
        time_step_rank="auto",
        layer_norm_epsilon=1e-5,
        use_bias=False,
        use_conv_bias=True,
        tie_word_embeddings=True,
        hidden_act="silu",
        residual_in_fp32=True,
        use_mambapy=False,
    )
    torch.manual_seed(SEED)
    model = MambaForCausalLM(config).float().to("cpu")
    # Move every parameter away from its trivial initial value (A_log = log(1..N) on every
    # row, D = 1, norms = 1, conv bias = 0) so that a loader that mixes up or skips a
    # tensor cannot pass by luck; dt_proj.bias stays as transformers initialised it.
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for layer in model.backbone.layers:
            mixer = layer.mixer
            mixer.A_log.add_(0.1 * torch.randn(mixer.A_log.shape, generator=gen))
            mixer.D.copy_(1.0 + 0.2 * torch.randn(mixer.D.shape, generator=gen))
            mixer.conv1d.bias.copy_(0.1 * torch.randn(mixer.conv1d.bias.shape, generator=gen))
            layer.norm.weight.copy_(1.0 + 0.2 * torch.randn(layer.norm.weight.shape, generator=gen))
        model.backbone.norm_f.weight.copy_(1.0 + 0.2 * torch.randn(model.backbone.norm_f.weight.shape, generator=gen))
    assert model.lm_head.weight.data_ptr() == model.backbone.embeddings.weight.data_ptr(), "head not tied"
    return model


def forward_backward(model, tokens):
    """Logits, loss and gradients on the CPU; also checks transformers' loss against ours."""
    model.eval()  # Mamba has no dropout: eval only skips the cache
    model.zero_grad(set_to_none=True)
    out = model(input_ids=tokens, labels=tokens, use_cache=False)
    logits = out.logits
    manual = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).double(), tokens[:, 1:].reshape(-1))
    assert abs(manual.item() - out.loss.item()) < 1e-5, (manual.item(), out.loss.item())
    out.loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return logits.detach().clone(), out.loss.detach().clone(), grads


def save_sharded_by_hand(model, folder):
    """Fallback when save_pretrained will not shard this small: our own index + shards."""
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    shards, current, size = [], {}, 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += nbytes
    shards.append(current)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(folder, fname), metadata={"format": "pt"})
        for name, tensor in shard.items():
            weight_map[name] = fname
            total += tensor.numel() * tensor.element_size()
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")
    model.config.save_pretrained(folder)


def check_reload(folder, tokens, logits):
    reloaded = MambaForCausalLM.from_pretrained(folder).float().to("cpu").eval()
    with torch.no_grad():
        again = reloaded(input_ids=tokens, use_cache=False).logits
    diff = (again - logits).abs().max().item()
    print(f"reload {os.path.basename(folder)}: max |logits diff| = {diff:.3g}")
    assert diff < 1e-6, f"{folder}: reloaded model gives different logits"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"),
                        help="folder that receives hf_tiny/, hf_tiny_sharded/ and hf_tiny_reference.safetensors")
    args = parser.parse_args()
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__}
    print("versions:", json.dumps(versions))
    torch.set_num_threads(1)  # deterministic reductions

    model = build_model()
    tokens = torch.randint(0, 64, (BATCH, SEQLEN), generator=torch.Generator().manual_seed(TOKENS_SEED))
    logits, loss, grads = forward_backward(model, tokens)
    print(f"loss = {loss.item():.6f}  (log V = {torch.log(torch.tensor(64.0)).item():.6f})")

    # How far float32 is from the exact answer, to choose the C test's tolerances.
    model64 = copy.deepcopy(model).double()
    logits64, loss64, grads64 = forward_backward(model64, tokens)
    diff_logits = (logits.double() - logits64).abs().max().item()
    diff_grads = max(((grads[n].double() - grads64[n]).abs().max() / grads64[n].abs().max().clamp(min=1e-30)).item()
                     for n in grads)
    print(f"float32 vs float64: max |logits diff| = {diff_logits:.3g}, max relative grad diff = {diff_grads:.3g}")

    os.makedirs(args.out, exist_ok=True)
    tiny = os.path.join(args.out, "hf_tiny")
    sharded = os.path.join(args.out, "hf_tiny_sharded")
    for folder in (tiny, sharded):
        shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(tiny)
    try:
        model.save_pretrained(sharded, max_shard_size=SHARD_BYTES)
    except Exception as e:  # a transformers that refuses shards this small
        print(f"save_pretrained(max_shard_size={SHARD_BYTES}) failed: {e}")
    shards = [f for f in os.listdir(sharded) if f.endswith(".safetensors")]
    if len(shards) < 2 or not os.path.exists(os.path.join(sharded, "model.safetensors.index.json")):
        print(f"save_pretrained wrote {len(shards)} shard(s): sharding by hand instead")
        shutil.rmtree(sharded)
        os.makedirs(sharded)
        save_sharded_by_hand(model, sharded)
        shards = [f for f in os.listdir(sharded) if f.endswith(".safetensors")]
    print(f"hf_tiny_sharded: {len(shards)} shards")

    saved = load_file(os.path.join(tiny, "model.safetensors"))
    expected = set(grads)
    assert set(saved) == expected, f"saved names differ: {sorted(set(saved) ^ expected)}"
    for name, tensor in saved.items():
        assert tensor.dtype == torch.float32 and tuple(tensor.shape) == tuple(grads[name].shape), name
    check_reload(tiny, tokens, logits)
    check_reload(sharded, tokens, logits)

    targets = torch.full_like(tokens, -1)
    targets[:, :-1] = tokens[:, 1:]
    reference = {
        "tokens": tokens.to(torch.int64).contiguous(),
        "targets": targets.to(torch.int64).contiguous(),
        "logits": logits.float().contiguous(),
        "loss": loss.float().reshape(1).contiguous(),
    }
    for name, g in grads.items():
        reference["grad." + name] = g.float().contiguous()
    metadata = dict(versions)
    metadata.update({
        "seed": str(SEED),
        "tokens_seed": str(TOKENS_SEED),
        "device": "cpu (transformers slow path), float32",
        "targets": "targets[b, t] = tokens[b, t + 1]; -1 (ignored) at t = seqlen - 1",
        "loss": "mean cross-entropy of logits[:, :-1] against tokens[:, 1:] (labels=tokens)",
        "grads": "grad.<name> = d loss / d <name>; the embedding gradient includes the tied lm_head",
        "float32_vs_float64_max_abs_logits": f"{diff_logits:.3g}",
        "float32_vs_float64_max_rel_grad": f"{diff_grads:.3g}",
        "config": json.dumps({k: getattr(model.config, k) for k in (
            "vocab_size", "hidden_size", "num_hidden_layers", "state_size", "expand", "conv_kernel",
            "time_step_rank", "intermediate_size", "layer_norm_epsilon")}),
    })
    path = os.path.join(args.out, "hf_tiny_reference.safetensors")
    save_file(reference, path, metadata=metadata)
    for name, t in reference.items():
        print(f"  {name:55s} {str(t.dtype):14s} {tuple(t.shape)}")
    print("wrote", tiny, sharded, path)


if __name__ == "__main__":
    main()
