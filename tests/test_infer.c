// The inference model (infer/infer.h) against the training forward (mamba_forward on the
// tape) and the plain recurrent step (mamba_step) on the same masked weights, for the
// outputs of every kind of pruning: unstructured masks at several sparsities (which the
// rule packs as bitmap or CSR16), 2:4 masks, a smaller d_state (structured removal) and
// fewer blocks; the sparse and forced-dense paths, the parallel prompt and the recurrent
// step, the state a prompt leaves against decoding token by token, batches of sequences,
// and the same bits for 1 and 2 threads.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "infer/infer.h"
#include "prune/linear_prune.h"
#include "tiny_model.h"

enum { BATCH = 3, SEQ = 9, PREFIX = 5 };

// d_model 36 (not a multiple of 8 or 16), vocab 50 (padded to 56), dt_rank 5.
static void make_model(MambaModel *model, int n_layer, int d_state, uint64_t seed) {
    tiny_model_create_sized(model, 36, n_layer, 50, d_state, 5, seed);
}

// Masks on the four linears of every layer: magnitude at `sparsity`, or 2:4 (two_four),
// applied to the weights. Row 0 of out_proj is pruned whole (an empty row).
static void prune(MambaModel *model, PruneMasks *masks, double sparsity, bool two_four) {
    bool *prunable = calloc((size_t)model->n_params, sizeof(bool));
    for (int i = 0; i < model->n_params; i++) {
        const char *n = model->params[i].name;
        prunable[i] = strstr(n, "_proj.weight") != NULL;
    }
    prune_masks_create(masks, model, prunable);
    free(prunable);
    for (int i = 0; i < masks->n; i++) {
        MaskedTensor *m = &masks->tensors[i];
        int cols = m->tensor->shape[1], rows = m->tensor->shape[0];
        PruneTarget target = {.sparsity = two_four ? 0.5 : sparsity};
        if (two_four && cols % 4 == 0) target.nm_n = 2, target.nm_m = 4;
        WeightView view = {m->name, m->tensor->data, m->keep, rows, cols};
        Error err;
        if (magnitude_prune(&view, &target, &err) != 0) {
            fprintf(stderr, "%s\n", err.message);
            exit(1);
        }
        if (strstr(m->name, "out_proj")) memset(m->keep, 0, (size_t)cols);
    }
    prune_masks_apply(masks, NULL);
}

static double max_rel(const float *a, const float *ref, size_t n) {
    double diff = 0.0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]);
        diff = e > diff || isnan(e) ? (isnan(e) ? INFINITY : e) : diff;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return diff / scale;
}

// One prompt long enough (T x d_model >= 32768 floats) for infer_prompt's elementwise
// steps to run over rows on every thread, against the training forward; at density 0.5
// in_proj and out_proj take the sparse prompt kernel (the rule's threshold is 0.6).
static void check_long_prompt(const char *label, MambaModel *model, const PruneMasks *masks, int L) {
    const MambaConfig *c = &model->config;
    const int V = c->vocab_padded;
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)L);
    Rng rng;
    rng_seed(&rng, 5);
    for (int i = 0; i < L; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    Tape tape;
    tape_init(&tape, 16u << 20);
    tape.recording = false;
    Tensor *train_logits;
    mamba_forward(&tape, model, tokens, NULL, 1, L, &train_logits);
    InferModel im;
    Error err;
    if (infer_model_build(&im, model, masks, NULL, &err) != 0) {
        check(false, "%s: build: %s", label, err.message);
        free(tokens), tape_free(&tape);
        return;
    }
    InferTensorInfo info[INFER_N_LINEARS];
    infer_model_tensors(&im, info);
    float *logits = malloc(sizeof(float) * (size_t)L * V);
    InferState state;
    infer_state_create(&state, c, 1);
    int rc = infer_prompt(&im, &state, tokens, 1, L, logits, true, &err);
    double e = rc == 0 ? max_rel(logits, train_logits->data, (size_t)L * V) : INFINITY;
    check(rc == 0 && (size_t)L * c->d_model >= 32768 && info[INFER_IN_PROJ].prompt_sparse &&
              info[INFER_OUT_PROJ].prompt_sparse && info[INFER_IN_PROJ].density > 0.4 && e < 1e-5,
          "%s: a prompt of %d (%d x %d floats the smallest step), in_proj at density %.2f through the sparse prompt kernel, = "
          "the training forward (rel %.2e)", label, L, L, c->d_model, info[INFER_IN_PROJ].density, e);
    infer_state_free(&state);
    infer_model_free(&im);
    free(logits), free(tokens);
    tape_free(&tape);
}

static void check_model(const char *label, MambaModel *model, const PruneMasks *masks) {
    const MambaConfig *c = &model->config;
    const int V = c->vocab_padded;
    int32_t tokens[BATCH * SEQ];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < BATCH * SEQ; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);

    // The training forward's logits (BATCH * SEQ, V).
    Tape tape;
    tape_init(&tape, 16u << 20);
    tape.recording = false;
    Tensor *train_logits;
    mamba_forward(&tape, model, tokens, NULL, BATCH, SEQ, &train_logits);

    InferModel sparse, dense;
    Error err;
    InferOptions force = {.force_dense = true};
    if (infer_model_build(&sparse, model, masks, NULL, &err) != 0 || infer_model_build(&dense, model, masks, &force, &err) != 0) {
        check(false, "%s: build: %s", label, err.message);
        return;
    }
    InferTensorInfo info[64];
    int n_info = infer_model_tensors(&sparse, info), n_sparse = 0;
    char formats[256] = "";
    for (int i = 0; i < n_info; i++) {
        n_sparse += info[i].format != PACKED_DENSE;
        if (i < 4) {
            char part[64];
            snprintf(part, sizeof part, "%s%s %s", i ? ", " : "", info[i].name + 24, packed_format_name(info[i].format));
            strcat(formats, part);
        }
    }
    check(infer_model_check(&sparse, &err) == 0, "%s: %d of %d linears packed sparse (layer 0: %s)", label, n_sparse,
          n_info, formats);

    const size_t n_all = (size_t)BATCH * SEQ * V;
    float *prompt_sparse = malloc(sizeof(float) * n_all), *prompt_dense = malloc(sizeof(float) * n_all);
    float *steps = malloc(sizeof(float) * n_all), *plain_steps = malloc(sizeof(float) * n_all);
    InferState state, state_steps;
    infer_state_create(&state, c, BATCH);
    infer_state_create(&state_steps, c, BATCH);
    int rc = infer_prompt(&sparse, &state, tokens, BATCH, SEQ, prompt_sparse, true, &err);
    rc |= infer_prompt(&dense, &state, tokens, BATCH, SEQ, prompt_dense, true, &err);
    check(rc == 0 && max_rel(prompt_sparse, train_logits->data, n_all) < 1e-5,
          "%s: sparse prompt logits = the training forward's (rel %.2e)", label, max_rel(prompt_sparse, train_logits->data, n_all));
    check(rc == 0 && max_rel(prompt_dense, train_logits->data, n_all) < 1e-5,
          "%s: dense prompt logits = the training forward's (rel %.2e)", label, max_rel(prompt_dense, train_logits->data, n_all));

    // Steps: all BATCH sequences at once, token by token; and mamba_step per sequence.
    MambaState plain;
    mamba_state_create(&plain, c);
    float step_logits[BATCH * 64];
    for (int b = 0; b < BATCH; b++) {
        mamba_state_reset(&plain, c);
        for (int t = 0; t < SEQ; t++)
            mamba_step(model, &plain, tokens[b * SEQ + t], plain_steps + ((size_t)b * SEQ + t) * V);
    }
    infer_state_reset(&state_steps, c);
    for (int t = 0; t < SEQ; t++) {
        int32_t column[BATCH];
        for (int b = 0; b < BATCH; b++) column[b] = tokens[b * SEQ + t];
        rc |= infer_step(&sparse, &state_steps, column, BATCH, step_logits, &err);
        for (int b = 0; b < BATCH; b++)
            memcpy(steps + ((size_t)b * SEQ + t) * V, step_logits + (size_t)b * V, sizeof(float) * V);
    }
    check(rc == 0 && max_rel(steps, train_logits->data, n_all) < 1e-5,
          "%s: sparse steps (batch %d) = the training forward's logits (rel %.2e)", label, BATCH,
          max_rel(steps, train_logits->data, n_all));
    check(max_rel(steps, plain_steps, n_all) < 1e-5, "%s: sparse steps = mamba_step (rel %.2e)", label,
          max_rel(steps, plain_steps, n_all));

    // Prompt of PREFIX tokens, then steps: the same logits and state as steps all along.
    float last[BATCH * 64];
    int32_t prefix[BATCH * PREFIX];
    for (int b = 0; b < BATCH; b++) memcpy(prefix + b * PREFIX, tokens + b * SEQ, sizeof(int32_t) * PREFIX);
    rc |= infer_prompt(&sparse, &state, prefix, BATCH, PREFIX, last, false, &err);
    double worst = 0.0;
    for (int b = 0; b < BATCH; b++) {
        double e = max_rel(last + (size_t)b * V, steps + ((size_t)b * SEQ + PREFIX - 1) * V, (size_t)V);
        worst = e > worst ? e : worst;
    }
    for (int t = PREFIX; t < SEQ; t++) {
        int32_t column[BATCH];
        for (int b = 0; b < BATCH; b++) column[b] = tokens[b * SEQ + t];
        rc |= infer_step(&sparse, &state, column, BATCH, step_logits, &err);
        for (int b = 0; b < BATCH; b++) {
            double e = max_rel(step_logits + (size_t)b * V, steps + ((size_t)b * SEQ + t) * V, (size_t)V);
            worst = e > worst ? e : worst;
        }
    }
    size_t n_ssm = (size_t)BATCH * c->n_layer * c->d_inner * c->d_state;
    size_t n_conv = (size_t)BATCH * c->n_layer * c->d_inner * (c->d_conv - 1);
    check(rc == 0 && worst < 1e-5, "%s: prompt of %d then steps = steps all along (logits rel %.2e)", label, PREFIX, worst);
    check(max_rel(state.ssm, state_steps.ssm, n_ssm) < 1e-5 && max_rel(state.conv, state_steps.conv, n_conv) < 1e-6,
          "%s: and the same state after (ssm rel %.2e, conv rel %.2e)", label, max_rel(state.ssm, state_steps.ssm, n_ssm),
          max_rel(state.conv, state_steps.conv, n_conv));

    // One sequence alone steps as it does within the batch; 1 and 2 threads give the same bits.
    float alone[64], with_one_thread[BATCH * 64];
    InferState single;
    infer_state_create(&single, c, 1);
    infer_state_reset(&state_steps, c);
    omp_set_num_threads(1);
    for (int t = 0; t < SEQ; t++) {
        int32_t column[BATCH];
        for (int b = 0; b < BATCH; b++) column[b] = tokens[b * SEQ + t];
        rc |= infer_step(&sparse, &state_steps, column, BATCH, with_one_thread, &err);
        rc |= infer_step(&sparse, &single, &column[1], 1, alone, &err);
    }
    omp_set_num_threads(2);
    bool same = true;
    for (int b = 0; b < BATCH; b++)
        same = same && memcmp(with_one_thread + (size_t)b * V, steps + ((size_t)b * SEQ + SEQ - 1) * V,
                              sizeof(float) * V) == 0;
    check(rc == 0 && same, "%s: steps with 1 thread give the bits of 2 threads", label);
    check(max_rel(alone, steps + ((size_t)1 * SEQ + SEQ - 1) * V, (size_t)V) < 1e-6,
          "%s: a sequence stepped alone = within the batch (rel %.2e)", label,
          max_rel(alone, steps + ((size_t)1 * SEQ + SEQ - 1) * V, (size_t)V));
    // The step of one sequence (one parallel region, rows shared by stored bytes): the same
    // bits at 2 and 3 threads as at 1.
    bool same_single = true;
    for (int threads = 2; threads <= 3; threads++) {
        float again[64];
        InferState fresh;
        infer_state_create(&fresh, c, 1);
        omp_set_num_threads(threads);
        for (int t = 0; t < SEQ; t++) rc |= infer_step(&sparse, &fresh, &tokens[1 * SEQ + t], 1, again, &err);
        same_single = same_single && memcmp(again, alone, sizeof(float) * V) == 0 &&
                      memcmp(fresh.ssm, single.ssm, sizeof(float) * c->n_layer * c->d_inner * c->d_state) == 0;
        infer_state_free(&fresh);
    }
    omp_set_num_threads(2);
    check(rc == 0 && same_single, "%s: one sequence's steps give the same bits at 1, 2 and 3 threads", label);

    int32_t bad = V;
    check_error("a token outside the vocabulary", infer_step(&sparse, &single, &bad, 1, alone, &err), &err,
                "outside the vocabulary", NULL);
    check_error("a batch past the capacity", infer_step(&sparse, &single, tokens, 2, alone, &err), &err, "capacity",
                NULL);
    infer_state_free(&single);
    infer_state_free(&state), infer_state_free(&state_steps), mamba_state_free(&plain);
    free(prompt_sparse), free(prompt_dense), free(steps), free(plain_steps);
    infer_model_free(&sparse), infer_model_free(&dense);
    tape_free(&tape);
}

// The opt-in low-precision head (bf16, int8 with row scales): the prompt and the steps
// agree with each other on the rounded head, the logits stay near fp32's (not equal: they
// change), the bytes held shrink, and converting back to fp32 keeps the rounded values.
static void check_head(MambaModel *model, const PruneMasks *masks) {
    const MambaConfig *c = &model->config;
    const int V = c->vocab_padded;
    const size_t n_all = (size_t)BATCH * SEQ * V;
    int32_t tokens[BATCH * SEQ];
    Rng rng;
    rng_seed(&rng, 4);
    for (int i = 0; i < BATCH * SEQ; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    float *exact = malloc(sizeof(float) * n_all), *prompt = malloc(sizeof(float) * n_all);
    float *steps = malloc(sizeof(float) * n_all), *step_logits = malloc(sizeof(float) * (size_t)BATCH * V);
    Error err;
    InferModel m;
    InferState state;
    infer_state_create(&state, c, BATCH);
    int rc = infer_model_build(&m, model, masks, NULL, &err);
    rc |= infer_prompt(&m, &state, tokens, BATCH, SEQ, exact, true, &err);
    const size_t fp32_bytes = infer_model_bytes(&m), head_fp32 = sizeof(float) * (size_t)V * c->d_model;
    const double bound[] = {0, 2e-2, 5e-2};  // of max |logit|: bf16, int8
    for (int f = LOWP_BF16; f <= LOWP_INT8; f++) {
        const char *name = lowp_format_name((LowpFormat)f);
        infer_model_set_head(&m, LOWP_F32);
        infer_model_free(&m);
        rc |= infer_model_build(&m, model, masks, NULL, &err);
        infer_model_set_head(&m, (LowpFormat)f);
        check(m.embedding == NULL && m.head_format == (LowpFormat)f &&
                  infer_model_bytes(&m) == fp32_bytes - head_fp32 + lowp_bytes((LowpFormat)f, V, c->d_model),
              "head %s: the fp32 embedding freed, %zu bytes held instead of %zu", name, infer_model_bytes(&m), fp32_bytes);
        rc |= infer_prompt(&m, &state, tokens, BATCH, SEQ, prompt, true, &err);
        infer_state_reset(&state, c);
        for (int t = 0; t < SEQ; t++) {
            int32_t column[BATCH];
            for (int b = 0; b < BATCH; b++) column[b] = tokens[b * SEQ + t];
            rc |= infer_step(&m, &state, column, BATCH, step_logits, &err);
            for (int b = 0; b < BATCH; b++)
                memcpy(steps + ((size_t)b * SEQ + t) * V, step_logits + (size_t)b * V, sizeof(float) * V);
        }
        double agree = max_rel(steps, prompt, n_all), off = max_rel(prompt, exact, n_all);
        check(rc == 0 && agree < 1e-5, "head %s: steps = prompt on the same rounded head (rel %.2e)", name, agree);
        check(off > 0 && off < bound[f], "head %s: logits off fp32's by %.2e of max |logit| (changed, below %.0e)", name,
              off, bound[f]);
        // Back to fp32: the same (rounded) weights, through the fp32 kernels.
        infer_model_set_head(&m, LOWP_F32);
        float last[BATCH * 64];
        rc |= infer_prompt(&m, &state, tokens, BATCH, SEQ, last, false, &err);
        double worst = 0.0;
        for (int b = 0; b < BATCH; b++) {
            double e = max_rel(last + (size_t)b * V, prompt + ((size_t)b * SEQ + SEQ - 1) * V, (size_t)V);
            worst = e > worst ? e : worst;
        }
        check(rc == 0 && m.head_format == LOWP_F32 && worst < 1e-5,
              "head %s back to fp32 holds the rounded values (rel %.2e)", name, worst);
        infer_model_free(&m);
        rc |= infer_model_build(&m, model, masks, NULL, &err);
        rc |= infer_prompt(&m, &state, tokens, BATCH, SEQ, exact, true, &err);
    }
    infer_model_free(&m);
    infer_state_free(&state);
    free(exact), free(prompt), free(steps), free(step_logits);
}

int main(void) {
    omp_set_num_threads(2);
    const double sparsities[] = {0.0, 0.5, 0.7, 0.9};
    for (int i = 0; i < 4; i++) {
        MambaModel model;
        PruneMasks masks;
        make_model(&model, 2, 8, 1 + (uint64_t)i);
        prune(&model, &masks, sparsities[i], false);
        char label[64];
        snprintf(label, sizeof label, "unstructured %.0f%%", 100 * sparsities[i]);
        check_model(label, &model, i == 2 ? NULL : &masks);  // 70%: from the zeros, as for a transformers folder
        if (i == 2) check_head(&model, NULL);
        prune_masks_free(&masks);
        mamba_model_free(&model);
    }
    MambaModel model;
    PruneMasks masks;
    make_model(&model, 2, 8, 7);
    prune(&model, &masks, 0.5, true);
    check_model("2:4", &model, &masks);
    prune_masks_free(&masks);
    mamba_model_free(&model);
    make_model(&model, 2, 3, 8);  // d_state 8 -> 3: structured removal is a smaller model
    prune(&model, &masks, 0.7, false);
    check_model("d_state 3 at 70%", &model, &masks);
    prune_masks_free(&masks);
    mamba_model_free(&model);
    // d_model 260: in_proj (1040, 260) and out_proj (260, 520) are large enough for the
    // rule to run the blocked sparse prompt kernel on the 27 prompt rows.
    tiny_model_create_sized(&model, 260, 1, 50, 4, 5, 10);
    prune(&model, &masks, 0.7, false);
    check_model("d_model 260 at 70%", &model, &masks);
    {
        InferModel im;
        InferOptions io = {.force_dense = false};
        Error err;
        InferTensorInfo info[INFER_N_LINEARS];
        int rc = infer_model_build(&im, &model, &masks, &io, &err), n = rc == 0 ? infer_model_tensors(&im, info) : 0;
        check(rc == 0 && n == INFER_N_LINEARS && info[INFER_IN_PROJ].prompt_sparse && info[INFER_OUT_PROJ].prompt_sparse &&
                  !info[INFER_X_PROJ].prompt_sparse && !info[INFER_DT_PROJ].prompt_sparse,
              "d_model 260 at 70%%: the prompt runs in_proj and out_proj through the sparse kernel, x_proj and dt_proj "
              "through unpack + sgemm");
        if (rc == 0) infer_model_free(&im);
    }
    prune_masks_free(&masks);
    mamba_model_free(&model);
    tiny_model_create_sized(&model, 260, 1, 50, 4, 5, 11);
    prune(&model, &masks, 0.5, false);
    check_long_prompt("d_model 260 at 50%", &model, &masks, 130);
    prune_masks_free(&masks);
    mamba_model_free(&model);
    // Conv widths other than Mamba's 4 take the step's general conv loop (K = 1: no
    // window at all); d_model 30 gives d_inner 60, so the scan's last piece of channels is
    // a short one (28 of 32).
    const int widths[] = {3, 1};
    for (int i = 0; i < 2; i++) {
        tiny_model_create_conv(&model, 30, 2, 50, 8, 5, widths[i], 11 + (uint64_t)i);
        prune(&model, &masks, 0.7, false);
        char label[64];
        snprintf(label, sizeof label, "d_conv %d, d_model 30 at 70%%", widths[i]);
        check_model(label, &model, &masks);
        prune_masks_free(&masks);
        mamba_model_free(&model);
    }
    make_model(&model, 1, 8, 9);  // a block removed
    prune(&model, &masks, 0.7, false);
    check_model("1 block at 70%", &model, &masks);
    prune_masks_free(&masks);
    mamba_model_free(&model);
    return check_summary("inference model");
}
