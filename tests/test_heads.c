// The classification task: the backward of the head's ops (pooling, bias) and of the whole
// head against central finite differences; ListOps rows checked by a stack evaluator
// written here independently of the generator's recursion; the TSV reader's layout and
// its errors on bad lines.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/ops.h"
#include "check.h"
#include "data/data.h"
#include "gradcheck.h"
#include "mamba/heads.h"
#include "mamba/model.h"

enum { B = 3, L = 4, C = 5, NCLS = 4 };

static const int ENDS[B] = {3, 1, -1};  // a full row, a short one, a padding row

static Tensor *build_pool_mean(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_pool(tape, in[0], ENDS, B, L, true);
}
static Tensor *build_pool_last(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_pool(tape, in[0], ENDS, B, L, false);
}
static Tensor *build_add_bias(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_add_bias(tape, in[0], in[1]);
}
// The whole head on fixed parameters: d(loss)/d(the last block's output).
static Tensor *build_head(Tape *tape, Tensor **in, void *ctx) {
    MambaModel *model = ctx;
    int32_t targets[B * L] = {-1, -1, -1, 2, -1, 0, -1, -1, -1, -1, -1, -1};
    return heads_classify(tape, model, in[0], targets, B, L, NULL);
}

static void check_gradients(void) {
    Rng rng;
    rng_seed(&rng, 5);
    float x[B * L * C], bias[C];
    fill_normal(x, B * L * C, &rng, 1.0f);
    fill_normal(bias, C, &rng, 1.0f);
    GradcheckInput px[] = {{"x", x, 2, {B * L, C}}};
    check(gradcheck("pool mean", build_pool_mean, px, 1, NULL, B * C, 1e-2f, 1e-2f) == 0, "pool (mean) backward");
    check(gradcheck("pool last", build_pool_last, px, 1, NULL, B * C, 1e-2f, 1e-2f) == 0, "pool (last) backward");
    GradcheckInput ab[] = {{"x", x, 2, {B * L, C}}, {"bias", bias, 1, {C}}};
    check(gradcheck("add_bias", build_add_bias, ab, 2, NULL, B * L * C, 1e-2f, 1e-2f) == 0, "add_bias backward");

    for (int pool = 0; pool < 2; pool++) {
        MambaConfig config;
        mamba_config_defaults(&config);
        config.d_model = C, config.n_layer = 1, config.vocab_size = 8;
        config.head = MAMBA_HEAD_CLASSIFY, config.n_classes = NCLS, config.pool = pool ? MAMBA_POOL_LAST : MAMBA_POOL_MEAN;
        Error err;
        check(mamba_config_finish(&config, &err) == 0, "classify config");
        MambaModel model;
        mamba_model_create(&model, &config);
        Rng init;
        rng_seed(&init, 11);
        mamba_model_init_random(&model, &init);
        for (int i = 0; i < C; i++) model.norm_f_weight.data[i] = 0.5f + 0.2f * (float)i;  // not all ones
        check(mamba_model_find(&model, "head.weight") && mamba_model_find(&model, "head.bias"),
              "head.weight and head.bias are named parameters");
        GradcheckInput hx[] = {{"x", x, 2, {B * L, C}}};
        check(gradcheck(pool ? "classify head (last)" : "classify head (mean)", build_head, hx, 1, &model, 1, 1e-2f,
                        1e-2f) == 0,
              "classification head backward, %s pooling", pool ? "last" : "mean");
        mamba_model_free(&model);
    }
}

// ---- ListOps: an independent evaluator (an explicit stack, no recursion) ----

// Token ids of data_internal.h, restated: 0 pad, 1..10 digits, 11 MAX, 12 MIN, 13 MED, 14 SM, 15 ].
static int compare_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

// Evaluates tokens[0..n) with a stack of frames; returns the value, or -1 (and a reason)
// when the row breaks the grammar: unbalanced, 2-10 arguments, depth <= 10.
static int stack_evaluate(const int32_t *tokens, int n, const char **why) {
    int op[16], count[16], args[16][16], depth = 0, result = -1;
    *why = "";
    for (int t = 0; t < n; t++) {
        int id = tokens[t];
        if (id >= 11 && id <= 14) {
            if (depth == 10) return *why = "depth > 10", -1;
            op[depth] = id, count[depth] = 0, depth++;
        } else if ((id >= 1 && id <= 10) || id == 15) {
            int value;
            if (id == 15) {
                if (depth == 0) return *why = "] without an operator", -1;
                depth--;
                int k = count[depth], *v = args[depth];
                if (k < 2 || k > 10) return *why = "operator with fewer than 2 or more than 10 arguments", -1;
                if (op[depth] == 11) { value = v[0]; for (int i = 1; i < k; i++) if (v[i] > value) value = v[i]; }
                else if (op[depth] == 12) { value = v[0]; for (int i = 1; i < k; i++) if (v[i] < value) value = v[i]; }
                else if (op[depth] == 14) { value = 0; for (int i = 0; i < k; i++) value += v[i]; value %= 10; }
                else {
                    qsort(v, (size_t)k, sizeof(int), compare_int);
                    value = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;  // int(np.median(v))
                }
            } else {
                value = id - 1;
            }
            if (depth == 0) {
                if (t != n - 1) return *why = "tokens after the expression", -1;
                result = value;
            } else {
                if (count[depth - 1] >= 16) return *why = "too many arguments", -1;
                args[depth - 1][count[depth - 1]++] = value;
            }
        } else {
            return *why = "a token that is not an operator, digit or ]", -1;
        }
    }
    if (depth != 0 || result < 0) return *why = "unclosed operator", -1;
    return result;
}

static void check_listops(void) {
    enum { ROWS = 64, LEN = 96, BATCHES = 16 };
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_LISTOPS;
    o.min_len = 20;
    o.max_len = 80;
    o.val_sequences = 64;
    Dataset ds;
    Error err;
    check(data_open(&ds, &o, LEN, &err) == 0, "listops opens: %s", err.message);
    check(data_vocab_size(&ds) == 16 && data_n_classes(&ds) == 10, "listops: vocab 16, 10 classes");
    int32_t tokens[ROWS * LEN], targets[ROWS * LEN], again[ROWS * LEN];
    int bad = 0, seen[10] = {0}, shortest = LEN, longest = 0, layout_bad = 0;
    const char *first_why = NULL;
    for (int k = 0; k < BATCHES; k++) {
        data_train_batch(&ds, k, ROWS, LEN, tokens, targets);
        for (int r = 0; r < ROWS; r++) {
            const int32_t *tok = tokens + r * LEN, *tgt = targets + r * LEN;
            int n = 0, labels = 0, label = -1;
            while (n < LEN && tok[n] != 0) n++;
            for (int t = n; t < LEN; t++) layout_bad += tok[t] != 0;
            for (int t = 0; t < LEN; t++)
                if (tgt[t] >= 0) labels++, label = tgt[t], layout_bad += t != n - 1;
            layout_bad += labels != 1;
            const char *why;
            int value = stack_evaluate(tok, n, &why);
            if (value != label) {
                if (!first_why) first_why = value < 0 ? why : "label differs from the value";
                bad++;
            }
            if (label >= 0 && label < 10) seen[label]++;
            if (n < shortest) shortest = n;
            if (n > longest) longest = n;
        }
    }
    check(bad == 0, "listops: %d of %d labels differ from the stack evaluator (%s)", bad, ROWS * BATCHES,
          first_why ? first_why : "none");
    check(layout_bad == 0, "listops: one label per row at its last token, padding after it (%d violations)", layout_bad);
    check(shortest >= 20 && longest <= 80, "listops: lengths %d .. %d within [20, 80]", shortest, longest);
    int classes = 0;
    for (int v = 0; v < 10; v++) classes += seen[v] > 0;
    check(classes == 10, "listops: all 10 labels occur (%d do)", classes);
    data_train_batch(&ds, 3, ROWS, LEN, tokens, targets);
    data_train_batch(&ds, 3, ROWS, LEN, again, targets);
    check(memcmp(tokens, again, sizeof tokens) == 0, "listops: a training batch is a pure function of its index");
    data_val_batch(&ds, 0, ROWS, LEN, tokens, targets);
    data_close(&ds);
    o.split = DATA_SPLIT_TEST;
    check(data_open(&ds, &o, LEN, &err) == 0, "listops test split opens");
    data_val_batch(&ds, 0, ROWS, LEN, again, targets);
    check(memcmp(tokens, again, sizeof tokens) != 0, "listops: the test split differs from the validation split");
    data_close(&ds);
    o.max_len = LEN + 1;
    check_error("listops: max_len > seqlen", data_open(&ds, &o, LEN, &err), &err, "data.max_len", NULL);
}

// ---- text_classification ----

static int open_tsv(const char *text, Dataset *ds, Error *err) {
    char path[] = "/tmp/test_heads_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return error_set(err, "mkstemp failed");
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_TEXT_CLASSIFICATION;
    o.path = path;
    o.val_fraction = 0.5f;
    int rc = data_open(ds, &o, 6, err);
    unlink(path);
    return rc;
}

static void check_tsv(void) {
    Dataset ds;
    Error err;
    check(open_tsv("1\tab\n0\tlonger text\r\n\n2\tz\n0\tqq\n", &ds, &err) == 0, "tsv opens: %s", err.message);
    check(ds.n_lines == 4 && ds.n_train == 2 && data_n_classes(&ds) == 3, "tsv: 4 lines, 2 for training, 3 classes");
    int32_t tokens[2 * 6], targets[2 * 6];
    data_val_batch(&ds, 0, 2, 6, tokens, targets);
    // Row 0 is line 3 ("z", label 2), row 1 line 4 ("qq", label 0).
    int32_t want_tok[12] = {'z' + 1, 0, 0, 0, 0, 0, 'q' + 1, 'q' + 1, 0, 0, 0, 0};
    int32_t want_tgt[12] = {2, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1};
    check(memcmp(tokens, want_tok, sizeof tokens) == 0 && memcmp(targets, want_tgt, sizeof targets) == 0,
          "tsv: bytes + 1, padding 0, the label at the last byte");
    data_close(&ds);
    check_error("tsv: no tab", open_tsv("1\tab\nno tab here\n", &ds, &err), &err, ":2:", "no tab", NULL);
    check_error("tsv: bad label", open_tsv("1\tab\nx1\tcd\n", &ds, &err), &err, ":2:", "label (column 1)", NULL);
    check_error("tsv: empty text", open_tsv("1\tab\n0\t\n", &ds, &err), &err, ":2:", "text (column 2) is empty", NULL);
    check_error("tsv: one class", open_tsv("0\tab\n0\tcd\n", &ds, &err), &err, "at least 2 classes", NULL);
}

int main(void) {
    check_gradients();
    check_listops();
    check_tsv();
    return check_summary("classification head and data");
}
