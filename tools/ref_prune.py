#!/usr/bin/python3
# A plain PyTorch reference of the two calibration-based pruning baselines, written from
# their papers, for checking src/prune/linear_prune.c: SparseGPT (Frantar & Alistarh 2023,
# the reference repository's SparseGPT.fasterprune) and Wanda (Sun et al. 2023).
#
#   python3 tools/ref_prune.py tests/fixtures/ref_prune.txt
#   python3 tools/ref_prune.py --walk DUMP tests/fixtures/ref_walk.txt
#   python3 tools/ref_prune.py --errors DUMP N M [METHOD,...]
#
# The first writes the fixture of tests/test_ref_prune.c: a random layer with correlated inputs
# (a few large features, as activations have), and both methods' results unstructured at
# 50% and 2:4, with blocks of 16 columns so that the lazy batch updates between blocks
# are exercised. Text, one array per line: "name rows cols v0 v1 ...", float32 values
# printed exactly (%.9g). Everything is computed in float64 from the float32 inputs.
#
# --walk reads DUMP, what tools/dump_calibration.c wrote (a trained model's blocks and the
# embedded calibration windows of the one-shot driver), and walks the blocks as the paper's
# sequential protocol does (and the reference repository's --true-sequential): block i is
# calibrated on the outputs of the pruned blocks before it, and inside a block each linear
# layer (in_proj, x_proj, dt_proj, out_proj) on its input recomputed with the layers before
# it pruned; conv1d, A_log and D stay dense. It writes DUMP's arrays, then for each case
# (sparsegpt and wanda at 50%, sparsegpt at 2:4 without dt_proj, whose rows are too short)
# every pruned weight and mask, each layer's ||WX - W'X|| on its own input, and each later
# block's calibration input: the fixture of tests/test_ref_walk.c.
import math
import sys

import torch


def prune_count(x):
    # The C side's prune_count: llround, halves away from zero (Python's round() rounds
    # halves to even, which differs on odd counts, e.g. a row of one column at 50%).
    return int(math.floor(x + 0.5))


def hessian(X):
    # H = (2/n) sum_t x_t x_t^T over the n rows of X (n, cols), as in the reference's add_batch.
    return 2.0 / X.shape[0] * X.T @ X


def sparsegpt(W, H, sparsity=0.5, prunen=0, prunem=0, blocksize=128, percdamp=0.01):
    # fasterprune of the SparseGPT repository, unchanged in substance: dead inputs, dampening,
    # the upper Cholesky factor of H^-1, blocks of blocksize columns with the mask of each
    # block (unstructured) by w^2 / diag(Hinv)^2, N:M per group when the walk reaches it,
    # OBS updates inside the block and the lazy batch update of the later columns.
    W = W.clone()
    H = H.clone()
    rows, columns = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    keep = torch.ones_like(W, dtype=torch.bool)
    if prunen:
        blocksize = max(prunem, blocksize - blocksize % prunem)
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        if prunen == 0:
            tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
            # The block's share of the tensor's count (cumulative rounding, as the C side,
            # so the total is exact); the reference takes int(numel * sparsity) per block.
            k = prune_count(sparsity * rows * i2) - prune_count(sparsity * rows * i1)
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
            if k > 0:
                order = torch.sort(tmp.flatten(), stable=True)[1][:k]
                mask1.view(-1)[order] = True
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if prunen != 0 and i % prunem == 0:
                tmp = W1[:, i:(i + prunem)] ** 2 / (torch.diag(Hinv1)[i:(i + prunem)].reshape((1, -1))) ** 2
                idx = torch.sort(tmp, dim=1, stable=True)[1][:, :prunen]
                mask1.scatter_(1, i + idx, True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        keep[:, i1:i2] = ~mask1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    W[~keep] = 0
    return W, keep


def wanda(W, X, sparsity=0.5, prunen=0, prunem=0):
    # S_ij = |W_ij| * ||X_j||_2, the lowest of each output row (cumulative rounding of the
    # count over the rows, as the C side), or the prunen lowest of every prunem columns.
    rows, cols = W.shape
    S = W.abs() * torch.sqrt((X ** 2).sum(0)).reshape(1, -1)
    prune = torch.zeros_like(W, dtype=torch.bool)
    if prunen:
        for g in range(0, cols, prunem):
            idx = torch.sort(S[:, g:g + prunem], dim=1, stable=True)[1][:, :prunen]
            prune.scatter_(1, g + idx, True)
    else:
        for r in range(rows):
            k = prune_count(sparsity * (r + 1) * cols) - prune_count(sparsity * r * cols)
            prune[r, torch.sort(S[r], stable=True)[1][:k]] = True
    out = W.clone()
    out[prune] = 0
    return out, ~prune


def magnitude(W, sparsity=0.5, prunen=0, prunem=0):
    # The C side's magnitude with prune.magnitude_scope tensor: the lowest |W| of the tensor
    # (cumulative count as prune_count), or the prunen lowest of every prunem columns of a row.
    rows, cols = W.shape
    prune = torch.zeros_like(W, dtype=torch.bool)
    if prunen:
        for g in range(0, cols, prunem):
            idx = torch.sort(W[:, g:g + prunem].abs(), dim=1, stable=True)[1][:, :prunen]
            prune.scatter_(1, g + idx, True)
    else:
        prune.view(-1)[torch.sort(W.abs().flatten(), stable=True)[1][:prune_count(sparsity * rows * cols)]] = True
    out = W.clone()
    out[prune] = 0
    return out, ~prune


def write_array(out, name, a):
    a = a.reshape(a.shape[0], -1) if a.dim() > 1 else a.reshape(1, -1)
    values = " ".join("%.9g" % v for v in a.flatten().tolist())
    out.write(f"{name} {a.shape[0]} {a.shape[1]} {values}\n")


def make_fixture(path):
    torch.manual_seed(17)
    rows, cols, T = 16, 48, 192
    Z = torch.randn(T, cols, dtype=torch.float64)
    A = torch.eye(cols, dtype=torch.float64) + 0.3 * torch.randn(cols, cols, dtype=torch.float64)
    X = (Z @ A) * (1 + 4 * (torch.rand(cols, dtype=torch.float64) < 0.1))
    X = X.float().double()  # exactly representable in float32, as the C side reads it
    W = torch.randn(rows, cols, dtype=torch.float64).float().double()
    with open(path, "w") as out:
        write_array(out, "weight", W)
        write_array(out, "inputs", X)
        for tag, (n, m) in {"unstructured": (0, 0), "nm24": (2, 4)}.items():
            results = {
                "sparsegpt": sparsegpt(W, hessian(X), 0.5, n, m, 16, 0.01),
                "wanda": wanda(W, X, 0.5, n, m),
            }
            for method, (Wp, keep) in results.items():
                write_array(out, f"{method}_{tag}_weight", Wp.float().double())
                write_array(out, f"{method}_{tag}_keep", keep.double())
                err = float((W @ X.T - Wp.float().double() @ X.T).norm())
                write_array(out, f"{method}_{tag}_recon", torch.tensor([err]))
                print(f"{method} {tag}: ||WX - W'X|| / ||WX|| = {err / float((W @ X.T).norm()):.5f}")


def read_arrays(path):
    arrays = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            rows, cols = int(parts[1]), int(parts[2])
            values = torch.tensor([float(v) for v in parts[3:]], dtype=torch.float64)
            assert values.numel() == rows * cols, parts[0]
            arrays[parts[0]] = values.reshape(rows, cols)
    return arrays


LINEARS = ["in_proj", "x_proj", "dt_proj", "out_proj"]


def mamba_block(p, x, nsamples, seqlen, dims):
    # One residual block of docs/DESIGN.md#model on x (nsamples * seqlen, d): returns its
    # output and the inputs of its four linear layers.
    d, N, K, R, eps = int(dims[0]), int(dims[2]), int(dims[3]), int(dims[5]), float(dims[6])
    u = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * p["norm.weight"].reshape(-1)
    xz = u @ p["mixer.in_proj.weight"].T
    D = xz.shape[1] // 2
    xi, z = xz[:, :D].reshape(nsamples, seqlen, D), xz[:, D:]
    w = p["mixer.conv1d.weight"].reshape(D, K)
    padded = torch.cat([torch.zeros(nsamples, K - 1, D, dtype=x.dtype), xi], 1)
    conv = sum(w[:, k] * padded[:, k:k + seqlen, :] for k in range(K)) + p["mixer.conv1d.bias"].reshape(-1)
    xs = torch.nn.functional.silu(conv).reshape(-1, D)
    dbc = xs @ p["mixer.x_proj.weight"].T
    delta, B, C = dbc[:, :R], dbc[:, R:R + N], dbc[:, R + N:]
    dt = delta @ p["mixer.dt_proj.weight"].T + p["mixer.dt_proj.bias"].reshape(-1)
    Delta = torch.log1p(torch.exp(dt)).reshape(nsamples, seqlen, D)
    A = -torch.exp(p["mixer.A_log"])
    xs3, B3, C3 = xs.reshape(nsamples, seqlen, D), B.reshape(nsamples, seqlen, N), C.reshape(nsamples, seqlen, N)
    h = torch.zeros(nsamples, D, N, dtype=x.dtype)
    ys = []
    for t in range(seqlen):
        h = torch.exp(Delta[:, t, :, None] * A) * h + (Delta[:, t] * xs3[:, t])[:, :, None] * B3[:, t, None, :]
        ys.append((h * C3[:, t, None, :]).sum(-1) + p["mixer.D"].reshape(-1) * xs3[:, t])
    y = torch.stack(ys, 1).reshape(-1, D)
    gated = y * torch.nn.functional.silu(z)
    out = gated @ p["mixer.out_proj.weight"].T
    return x + out, {"in_proj": u, "x_proj": xs, "dt_proj": delta, "out_proj": gated}


def make_walk_fixture(dump, path):
    a = read_arrays(dump)
    dims = a["dims"].reshape(-1)
    n_layer, nsamples, seqlen = int(dims[1]), int(dims[7]), int(dims[8])
    cases = {"sparsegpt_unstructured": ("sparsegpt", 0, 0, LINEARS), "wanda_unstructured": ("wanda", 0, 0, LINEARS),
             "sparsegpt_nm24": ("sparsegpt", 2, 4, ["in_proj", "x_proj", "out_proj"])}
    with open(path, "w") as out:
        for name, v in a.items():
            write_array(out, name, v)
        for case, (method, n, m, pruned) in cases.items():
            x = a["inputs"].clone()
            for i in range(n_layer):
                prefix = f"backbone.layers.{i}."
                p = {k[len(prefix):]: v.clone() for k, v in a.items() if k.startswith(prefix)}
                if i > 0:
                    write_array(out, f"{case}.block_input.{i}", x.float().double())
                for layer in LINEARS:
                    if layer not in pruned:
                        continue
                    _, inputs = mamba_block(p, x, nsamples, seqlen, dims)
                    X = inputs[layer]
                    W = p[f"mixer.{layer}.weight"]
                    if method == "sparsegpt":
                        Wp, keep = sparsegpt(W, hessian(X), 0.5, n, m, 16, 0.01)
                    else:
                        Wp, keep = wanda(W, X, 0.5, n, m)
                    Wp = Wp.float().double()
                    p[f"mixer.{layer}.weight"] = Wp
                    key = f"{case}.{prefix}mixer.{layer}"
                    write_array(out, f"{key}.weight", Wp)
                    write_array(out, f"{key}.keep", keep.double())
                    err = float((W @ X.T - Wp @ X.T).norm())
                    write_array(out, f"{key}.recon", torch.tensor([err]))
                    print(f"{case} block {i} {layer}: ||WX - W'X|| / ||WX|| = {err / float((W @ X.T).norm()):.5f}")
                x, _ = mamba_block(p, x, nsamples, seqlen, dims)


def layer_errors(dump, prunen, prunem, methods=("magnitude", "wanda", "sparsegpt")):
    # --errors: the sequential walk of make_walk_fixture on DUMP (a real model) for magnitude,
    # Wanda and SparseGPT (or the METHODs given; magnitude_row is Wanda without the input
    # norms, |W| compared within each output row) at 50% (N M = 0 0) or N:M (dt_proj dense). Prints, per linear layer
    # and block, ||WX - W'X|| / ||WX|| on the layer's own input (err) and the same with the
    # off-diagonal of X^T X dropped (diag: sqrt(sum_rj (W - W')_rj^2 ||X_j||^2), the error
    # Wanda's score minimises when the inputs are uncorrelated), and each block's output
    # (the residual stream, the earlier blocks pruned too) against the dense model's:
    # ||x - x_dense|| / ||x_dense - x_in|| and the tokens' mean 1 - cos(x, x_dense); then
    # each model's perplexity on the calibration windows themselves (DUMP's targets).
    a = read_arrays(dump)
    dims = a["dims"].reshape(-1)
    n_layer, nsamples, seqlen = int(dims[1]), int(dims[7]), int(dims[8])
    layers = ["in_proj", "x_proj", "out_proj"] if prunen else LINEARS
    blocks = []
    for i in range(n_layer):
        prefix = f"backbone.layers.{i}."
        blocks.append({k[len(prefix):]: v for k, v in a.items() if k.startswith(prefix)})
    dense = [a["inputs"]]
    for p in blocks:
        dense.append(mamba_block(p, dense[-1], nsamples, seqlen, dims)[0])
    def perplexity(x):  # the tied head's next-token perplexity on the calibration windows
        u = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + float(dims[6])) * a["backbone.norm_f.weight"].reshape(-1)
        logits = u @ a["backbone.embeddings.weight"].T
        return math.exp(float(torch.nn.functional.cross_entropy(logits, a["targets"].reshape(-1).long())))

    table = {}
    ppl = {"dense": perplexity(dense[-1])}
    for method in methods:
        x = a["inputs"].clone()
        for i, p0 in enumerate(blocks):
            p = {k: v.clone() for k, v in p0.items()}
            for layer in layers:
                X = mamba_block(p, x, nsamples, seqlen, dims)[1][layer]
                W = p[f"mixer.{layer}.weight"]
                if method == "sparsegpt":
                    Wp = sparsegpt(W, hessian(X), 0.5, prunen, prunem, 128, 0.01)[0]
                elif method == "wanda":
                    Wp = wanda(W, X, 0.5, prunen, prunem)[0]
                elif method == "magnitude_row":  # Wanda's comparison groups with |W| alone
                    Wp = wanda(W, torch.ones(1, W.shape[1], dtype=W.dtype), 0.5, prunen, prunem)[0]
                else:
                    Wp = magnitude(W, 0.5, prunen, prunem)[0]
                Wp = Wp.float().double()
                p[f"mixer.{layer}.weight"] = Wp
                full = float((W @ X.T).norm())
                dW = W - Wp
                err = float((dW @ X.T).norm()) / full
                diag = float(((dW ** 2) @ (X ** 2).sum(0)).sum().sqrt()) / full
                table[(method, i, layer)] = (err, diag)
            x = mamba_block(p, x, nsamples, seqlen, dims)[0]
            cos = torch.nn.functional.cosine_similarity(x, dense[i + 1], dim=1)
            table[(method, i, "block")] = (float((x - dense[i + 1]).norm() / (dense[i + 1] - dense[i]).norm()),
                                           float((1 - cos).mean()))
        ppl[method] = perplexity(x)
    target = f"{prunen}:{prunem}" if prunen else "50%"
    print(f"{dump}, {target}: ||WX - W'X|| / ||WX|| (diag: without the off-diagonal of X^T X) and block outputs")
    print("| block | layer | " + " | ".join(f"{m} err | {m} diag" for m in methods) + " |")
    print("|---" * (2 + 2 * len(methods)) + "|")
    for i in range(n_layer):
        for layer in layers + ["block"]:
            cells = []
            for m in methods:
                err, diag = table[(m, i, layer)]
                cells += [f"{err:.4f}", f"{diag:.4f}" if layer != "block" else f"{diag:.5f} (1 - cos)"]
            print(f"| {i} | {layer} | " + " | ".join(cells) + " |")
    for layer in layers + ["block"]:
        means = [sum(table[(m, i, layer)][0] for i in range(n_layer)) / n_layer for m in methods]
        print(f"mean over blocks, {layer}: " + " ".join(f"{m} {v:.4f}" for m, v in zip(methods, means)))
    print("perplexity on the calibration windows: " + ", ".join(f"{m} {v:.4f}" for m, v in ppl.items()))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--walk":
        make_walk_fixture(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (5, 6) and sys.argv[1] == "--errors":
        torch.set_num_threads(1)
        layer_errors(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *(sys.argv[5].split(","),) if len(sys.argv) == 6 else ())
    else:
        make_fixture(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/ref_prune.txt")
