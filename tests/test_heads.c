// The task heads: the backward of the heads' ops (pooling, bias, mean squared error) and of
// the whole classification, forecasting and DLinear heads against central finite
// differences; ListOps rows checked by a stack evaluator written here independently of the
// generator's recursion; the TSV reader's layout and its errors on bad lines; the CSV
// reader of the forecasting series (standardisation, splits, windows, its errors on bad
// cells and too few rows) and the generated seasonal series.
#include <math.h>
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

// text in a new temporary file, named from the template path (ending XXXXXX).
static int write_temp_file(char *path, const char *text, Error *err) {
    int fd = mkstemp(path);
    if (fd < 0) return error_set(err, "mkstemp failed");
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return 0;
}

static int open_tsv(const char *text, Dataset *ds, Error *err) {
    char path[] = "/tmp/test_heads_XXXXXX";
    if (write_temp_file(path, text, err) != 0) return -1;
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

// ---- forecasting ----

enum { FB = 2, FL = 30, FF = 3, FH = 4, FD = 6 };

static float VALUES[FB * FL * FF], FUTURE[FB * FH * FF];

static Tensor *build_mse(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_mse(tape, in[0], FUTURE);
}

// The gradient of a model parameter: the parameter's tensor is pointed at the checked
// input for the build, so that the tape's gradient lands where gradcheck reads it.
typedef struct ParamCheck {
    MambaModel *model;
    Tensor *param;            // NULL: the input is the last block's output x (heads_forecast)
} ParamCheck;

static Tensor *build_forecast_head(Tape *tape, Tensor **in, void *ctx) {
    ParamCheck *p = ctx;
    return heads_forecast(tape, p->model, in[0], FUTURE, FB, FL, NULL, NULL, NULL);
}

static Tensor *build_forecast_param(Tape *tape, Tensor **in, void *ctx) {
    ParamCheck *p = ctx;
    p->param->data = in[0]->data;
    p->param->grad = NULL;  // a fresh gradient in the tape's arena
    in[0] = p->param;
    return mamba_forward_values(tape, p->model, VALUES, FUTURE, FB, FL, NULL, NULL);
}

// In place: the parameter table points into the model struct.
static void make_forecaster_normed(MambaModel *model, MambaHead head, MambaWindowNorm window_norm) {
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_model = FD, config.n_layer = head == MAMBA_HEAD_DLINEAR ? 0 : 1, config.head = head;
    config.window_norm = window_norm;
    config.n_features = FF, config.horizon = FH, config.input_len = FL;
    Error err;
    check(mamba_config_finish(&config, &err) == 0, "forecast config: %s", err.message);
    mamba_model_create(model, &config);
    Rng init;
    rng_seed(&init, 12);
    mamba_model_init_random(model, &init);
}

static void make_forecaster(MambaModel *model, MambaHead head) {
    make_forecaster_normed(model, head, MAMBA_WINDOW_NONE);
}

// d(loss)/d(parameter name) of the whole forecasting forward.
static void check_param_gradient(MambaModel *model, const char *name, const char *label) {
    Tensor *t = mamba_model_find(model, name);
    check(t != NULL, "%s: %s is a named parameter", label, name);
    if (!t) return;
    float *data = t->data, *grad = t->grad, *copy = malloc(sizeof(float) * t->size);
    memcpy(copy, data, sizeof(float) * t->size);
    GradcheckInput in[] = {{name, copy, t->ndim, {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}}};
    ParamCheck p = {model, t};
    check(gradcheck(label, build_forecast_param, in, 1, &p, 1, 1e-2f, 2e-2f) == 0, "%s backward d/d%s", label, name);
    t->data = data, t->grad = grad;
    free(copy);
}

static void check_forecast_gradients(void) {
    Rng rng;
    rng_seed(&rng, 21);
    fill_normal(VALUES, FB * FL * FF, &rng, 1.0f);
    fill_normal(FUTURE, FB * FH * FF, &rng, 1.0f);
    float pred[FB * FH * FF], x[FB * FL * FD];
    fill_normal(pred, FB * FH * FF, &rng, 1.0f);
    GradcheckInput pm[] = {{"pred", pred, 2, {FB, FH * FF}}};
    check(gradcheck("mse", build_mse, pm, 1, NULL, 1, 1e-2f, 1e-2f) == 0, "mse backward");

    MambaModel model;
    make_forecaster(&model, MAMBA_HEAD_FORECAST);
    check(model.config.vocab_padded == 0 && !mamba_model_find(&model, "backbone.embeddings.weight"),
          "forecast: no embedding");
    for (int i = 0; i < FD; i++) model.norm_f_weight.data[i] = 0.5f + 0.2f * (float)i;
    fill_normal(x, FB * FL * FD, &rng, 1.0f);
    GradcheckInput hx[] = {{"x", x, 2, {FB * FL, FD}}};
    ParamCheck head = {&model, NULL};
    check(gradcheck("forecast head", build_forecast_head, hx, 1, &head, 1, 1e-2f, 1e-2f) == 0,
          "forecast head backward d/dx");
    check_param_gradient(&model, "input_proj.weight", "forecast forward");
    check_param_gradient(&model, "input_proj.bias", "forecast forward");
    check_param_gradient(&model, "head.weight", "forecast forward");
    mamba_model_free(&model);

    MambaModel dl;
    make_forecaster(&dl, MAMBA_HEAD_DLINEAR);
    check(dl.n_params == 5, "dlinear: norm_f and the two maps with their biases (%d parameters)", dl.n_params);
    check_param_gradient(&dl, "head.seasonal.weight", "dlinear");
    check_param_gradient(&dl, "head.seasonal.bias", "dlinear");
    check_param_gradient(&dl, "head.trend.weight", "dlinear");
    check_param_gradient(&dl, "head.trend.bias", "dlinear");
    // With the seasonal map equal to the trend map, the forecast is one linear map of the
    // raw input: (seasonal + trend) = x, so pred = W x + bs + bt for every series.
    for (size_t i = 0; i < dl.head_weight.size; i++) dl.trend_weight.data[i] = dl.head_weight.data[i];
    float out[FB * FH * FF];
    Tape tape;
    tape_init(&tape, 1 << 20);
    mamba_forward_values(&tape, &dl, VALUES, NULL, FB, FL, out, NULL);
    double worst = 0.0;
    for (int b = 0; b < FB; b++)
        for (int h = 0; h < FH; h++)
            for (int f = 0; f < FF; f++) {
                double want = dl.head_bias.data[h] + dl.trend_bias.data[h];
                for (int t = 0; t < FL; t++) want += dl.head_weight.data[h * FL + t] * VALUES[(b * FL + t) * FF + f];
                worst = fmax(worst, fabs(want - out[(b * FH + h) * FF + f]));
            }
    check(worst < 1e-4, "dlinear: equal maps give W x + b (max error %.2e), so trend + seasonal = x", worst);
    tape_free(&tape);
    mamba_model_free(&dl);

    // The moving average of DLinear, restated: mean of x[clamp(i + o)] for o in -12..12.
    float M[FL * FL];
    heads_moving_average_matrix(FL, MAMBA_DLINEAR_KERNEL, M);
    double off = 0.0;
    for (int i = 0; i < FL; i++)
        for (int j = 0; j < FL; j++) {
            int count = 0;
            for (int o = -12; o <= 12; o++) count += (i + o < 0 ? 0 : i + o > FL - 1 ? FL - 1 : i + o) == j;
            off = fmax(off, fabs(M[i * FL + j] - count / 25.0));
        }
    check(off < 1e-6, "moving average: replicate padding, 25 steps (max error %.2e)", off);
}

// ---- per-window normalisation (model.window_norm) ----

static float SHIFT[FB * FF], SCALE[FB * FF];

static Tensor *build_window_norm(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_window_norm(tape, VALUES, SHIFT, SCALE, in[0], in[1], FB, FL, FF);
}
static Tensor *build_window_denorm(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_window_denorm(tape, in[0], SHIFT, SCALE, NULL, NULL, FB, FH, FF, 1e-10f);
}
static Tensor *build_window_denorm_affine(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_window_denorm(tape, in[0], SHIFT, SCALE, in[1], in[2], FB, FH, FF, 1e-10f);
}

// The forecast of a model for windows v: out (FB, FH, FF).
static void forecast(MambaModel *model, const float *v, float *out) {
    Tape tape;
    tape_init(&tape, 1 << 20);
    mamba_forward_values(&tape, model, v, NULL, FB, FL, out, NULL);
    tape_free(&tape);
}

static void check_window_norm(void) {
    Rng rng;
    rng_seed(&rng, 33);
    for (int i = 0; i < FB * FL * FF; i++) VALUES[i] = 3.0f * rng_normal(&rng) + (float)(i % FF) - 1.0f;
    fill_normal(FUTURE, FB * FH * FF, &rng, 2.0f);
    // The statistics restated: the mean, and sqrt(E[x^2] - E[x]^2 + eps), in double.
    float last_shift[FB * FF], last_scale[FB * FF];
    window_norm_stats(VALUES, FB, FL, FF, false, 1e-5f, SHIFT, SCALE);
    window_norm_stats(VALUES, FB, FL, FF, true, 1e-5f, last_shift, last_scale);
    double worst = 0.0, worst_last = 0.0;
    for (int b = 0; b < FB; b++)
        for (int f = 0; f < FF; f++) {
            double s1 = 0.0, s2 = 0.0;
            for (int t = 0; t < FL; t++) {
                double v = VALUES[(b * FL + t) * FF + f];
                s1 += v, s2 += v * v;
            }
            double mean = s1 / FL, std = sqrt(s2 / FL - mean * mean + 1e-5);
            worst = fmax(worst, fmax(fabs(SHIFT[b * FF + f] - mean), fabs(SCALE[b * FF + f] - std) / std));
            worst_last = fmax(worst_last, fabs(last_shift[b * FF + f] - VALUES[(b * FL + FL - 1) * FF + f]) +
                                              fabs(last_scale[b * FF + f] - 1.0f));
        }
    check(worst < 1e-5, "window_norm_stats: per-window, per-feature mean and biased std (max error %.2e)", worst);
    check(worst_last == 0.0, "window_norm_stats last: the window's last value, scale 1");

    // The backward of both ops against finite differences, with and without the affine.
    float weight[FF], bias[FF], pred[FB * FH * FF];
    for (int f = 0; f < FF; f++) weight[f] = 0.6f + 0.4f * (float)f, bias[f] = 0.3f * (float)f - 0.2f;
    fill_normal(pred, FB * FH * FF, &rng, 1.0f);
    GradcheckInput wb[] = {{"weight", weight, 1, {FF}}, {"bias", bias, 1, {FF}}};
    check(gradcheck("window_norm", build_window_norm, wb, 2, NULL, FB * FL * FF, 1e-2f, 1e-2f) == 0,
          "window_norm (affine) backward");
    GradcheckInput p1[] = {{"pred", pred, 2, {FB, FH * FF}}};
    check(gradcheck("window_denorm", build_window_denorm, p1, 1, NULL, FB * FH * FF, 1e-2f, 1e-2f) == 0,
          "window_denorm backward");
    GradcheckInput p3[] = {{"pred", pred, 2, {FB, FH * FF}}, {"weight", weight, 1, {FF}}, {"bias", bias, 1, {FF}}};
    check(gradcheck("window_denorm affine", build_window_denorm_affine, p3, 3, NULL, FB * FH * FF, 1e-2f, 1e-2f) == 0,
          "window_denorm (affine) backward");

    // denorm inverts norm: the normalised window, mapped back by the same statistics.
    Tape tape;
    tape_init(&tape, 1 << 20);
    Tensor *w = tensor_view(&tape, weight, 1, (int[]){FF}), *bb = tensor_view(&tape, bias, 1, (int[]){FF});
    Tensor *z = op_window_norm(&tape, VALUES, SHIFT, SCALE, w, bb, FB, FL, FF);
    Tensor *back = op_window_denorm(&tape, z, SHIFT, SCALE, w, bb, FB, FL, FF, 0.0f);
    double trip = 0.0, mean0 = 0.0;
    for (size_t i = 0; i < back->size; i++) trip = fmax(trip, fabs(back->data[i] - VALUES[i]));
    Tensor *plain = op_window_norm(&tape, VALUES, SHIFT, SCALE, NULL, NULL, FB, FL, FF);
    for (int t = 0; t < FL; t++) mean0 += plain->data[t * FF + 1] / FL;  // window 0, feature 1
    check(trip < 1e-4 && fabs(mean0) < 1e-5, "window_denorm(window_norm(v)) = v (max error %.2e); a normalised "
          "window has mean 0 (%.1e)", trip, mean0);
    tape_free(&tape);

    // The whole forecaster with each normalisation: gradients of its parameters, and the
    // property it is for: revin's forecast of a*v + c is a*forecast(v) + c for a > 0
    // (per window and feature), last's forecast of v + c is forecast(v) + c.
    const MambaWindowNorm modes[] = {MAMBA_WINDOW_REVIN, MAMBA_WINDOW_REVIN_AFFINE, MAMBA_WINDOW_LAST};
    const char *names[] = {"revin", "revin_affine", "last"};
    for (int m = 0; m < 3; m++) {
        MambaModel model;
        make_forecaster_normed(&model, MAMBA_HEAD_FORECAST, modes[m]);
        bool affine = modes[m] == MAMBA_WINDOW_REVIN_AFFINE;
        check((mamba_model_find(&model, "revin.weight") != NULL) == affine &&
                  (size_t)mamba_config_param_count(&model.config) == model.n_elements,
              "%s: revin.weight %s, the parameter count matches the table", names[m], affine ? "present" : "absent");
        if (affine)
            for (int f = 0; f < FF; f++) model.revin_weight.data[f] = weight[f], model.revin_bias.data[f] = bias[f];
        char label[64];
        snprintf(label, sizeof label, "forecast %s", names[m]);
        check_param_gradient(&model, "input_proj.weight", label);
        check_param_gradient(&model, "head.weight", label);
        check_param_gradient(&model, "head.bias", label);
        check_param_gradient(&model, "backbone.layers.0.mixer.in_proj.weight", label);
        if (affine) {
            check_param_gradient(&model, "revin.weight", label);
            check_param_gradient(&model, "revin.bias", label);
        }
        float moved[FB * FL * FF], out[FB * FH * FF], out_moved[FB * FH * FF];
        const float a = modes[m] == MAMBA_WINDOW_LAST ? 1.0f : 2.5f;
        for (int b = 0; b < FB; b++)
            for (int t = 0; t < FL; t++)
                for (int f = 0; f < FF; f++) {
                    int i = (b * FL + t) * FF + f;
                    moved[i] = a * VALUES[i] + 1.5f * (float)(b + f) - 2.0f;
                }
        forecast(&model, VALUES, out);
        forecast(&model, moved, out_moved);
        double off = 0.0, spread = 0.0;
        for (int b = 0; b < FB; b++)
            for (int h = 0; h < FH; h++)
                for (int f = 0; f < FF; f++) {
                    int i = (b * FH + h) * FF + f;
                    off = fmax(off, fabs(out_moved[i] - (a * out[i] + 1.5f * (float)(b + f) - 2.0f)));
                    spread = fmax(spread, fabs(out[i]));
                }
        check(off < 1e-3 * (1.0 + spread), "%s: the forecast follows an affine change of each window (max error %.2e)",
              names[m], off);
        mamba_model_free(&model);
    }
    // Without normalisation the same change does move the forecast otherwise: the check above can fail.
    MambaModel plain_model;
    make_forecaster(&plain_model, MAMBA_HEAD_FORECAST);
    float moved[FB * FL * FF], out[FB * FH * FF], out_moved[FB * FH * FF];
    for (int i = 0; i < FB * FL * FF; i++) moved[i] = VALUES[i] + 3.0f;
    forecast(&plain_model, VALUES, out);
    forecast(&plain_model, moved, out_moved);
    double off = 0.0;
    for (int i = 0; i < FB * FH * FF; i++) off = fmax(off, fabs(out_moved[i] - out[i] - 3.0f));
    check(off > 1e-2, "none: shifting the window does not shift the forecast by the same (max difference %.2e)", off);
    mamba_model_free(&plain_model);
    MambaConfig dl;
    mamba_config_defaults(&dl);
    dl.d_model = FD, dl.head = MAMBA_HEAD_DLINEAR, dl.n_features = FF, dl.horizon = FH, dl.input_len = FL;
    dl.window_norm = MAMBA_WINDOW_REVIN;
    Error err;
    check_error("window_norm with dlinear", mamba_config_finish(&dl, &err), &err, "model.window_norm",
                "model.head = forecast only", NULL);
}

// A CSV with header "date,a,b,OT" and rows of the given text; data_open on it.
static int open_csv(const char *text, int target_only, long train, long val, long test, int L, int H, Dataset *ds,
                    Error *err) {
    char path[] = "/tmp/test_heads_csv_XXXXXX";
    if (write_temp_file(path, text, err) != 0) return -1;
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_TIMESERIES;
    o.path = path;
    o.target_only = target_only;
    o.train_rows = train, o.val_rows = val, o.test_rows = test, o.horizon = H;
    int rc = data_open(ds, &o, L, err);
    unlink(path);
    return rc;
}

// Rows "2016-07-01 00:00:0k,k,10*k,k*k" for k = 0 .. n-1 after the header, into buf.
static void csv_rows(char *buf, size_t size, int n) {
    size_t used = (size_t)snprintf(buf, size, "date,a,b,OT\r\n");
    for (int k = 0; k < n; k++) used += (size_t)snprintf(buf + used, size - used, "\"2016-07-01 %02d:00\",%d,%d,%d\n", k, k, 10 * k, k * k);
}

static void check_csv(void) {
    char text[4096];
    csv_rows(text, sizeof text, 20);
    Dataset ds;
    Error err;
    // 10 training rows, 5 + 5 held out; input 4, horizon 2.
    check(open_csv(text, 0, 10, 5, 5, 4, 2, &ds, &err) == 0, "csv opens: %s", err.message);
    check(data_is_series(&ds) && data_n_features(&ds) == 3 && data_horizon(&ds) == 2, "csv: 3 features, horizon 2");
    double worst = 0.0;
    for (int f = 0; f < 3; f++) {
        double sum = 0.0, sq = 0.0;
        for (int t = 0; t < 10; t++) sum += ds.series[t * 3 + f], sq += ds.series[t * 3 + f] * ds.series[t * 3 + f];
        worst = fmax(worst, fmax(fabs(sum / 10), fabs(sq / 10 - 1.0)));
    }
    check(worst < 1e-5, "csv: the training rows standardised to mean 0, std 1 (max error %.2e)", worst);
    // Feature a of row k is (k - 4.5) / std(0..9): undo it to read the row a window starts at.
    double std_a = sqrt(8.25);
    check(data_val_batch_count(&ds, 8, 4) == 1, "csv: 5 validation rows, horizon 2: 4 windows in one batch of 8");
    float values[8 * 4 * 3], future[8 * 2 * 3];
    int rows = data_val_values(&ds, 0, 8, 4, values, future);
    check(rows == 4, "csv: 4 real rows in the validation batch, got %d", rows);
    check(fabs(values[0] * std_a + 4.5 - 6.0) < 1e-4 && fabs(future[0] * std_a + 4.5 - 10.0) < 1e-4,
          "csv: the first validation window reads rows 6-9 (train_rows - seqlen) and predicts rows 10-11");
    check(fabs(future[(3 * 2 + 1) * 3] * std_a + 4.5 - 14.0) < 1e-4, "csv: the last validation window predicts rows 13-14");
    check(values[4 * 4 * 3] == 0.0f && future[4 * 2 * 3] == 0.0f, "csv: padding rows are zeros");
    data_close(&ds);
    check(open_csv(text, 1, 10, 5, 5, 4, 2, &ds, &err) == 0 && data_n_features(&ds) == 1, "csv: features S keeps one");
    if (ds.series) check(fabs(ds.series[0] * ds.feature_std[0] + ds.feature_mean[0]) < 1e-4 && fabs(ds.feature_mean[0] - 28.5) < 1e-9,
                         "csv: features S is the last column (OT = k*k, training mean 28.5)");
    data_close(&ds);

    csv_rows(text, sizeof text, 20);
    check_error("csv: too few rows", open_csv(text, 0, 10, 5, 6, 4, 2, &ds, &err), &err, "20 data rows", "data.test_rows",
                NULL);
    check_error("csv: input + horizon over the training rows", open_csv(text, 0, 5, 5, 5, 4, 2, &ds, &err), &err,
                "data.train_rows (5)", "train.seqlen (4) + data.horizon (2)", NULL);
    check_error("csv: horizon over the validation rows", open_csv(text, 0, 10, 1, 5, 4, 2, &ds, &err), &err,
                "data.val_rows", "data.horizon", NULL);
    const char *bad[][4] = {
        {"date,a,b,OT\nd,1,2,3\nd,1,,3\n", "line 3 (data row 1), column 3 (b)", "empty", NULL},
        {"date,a,b,OT\nd,1,2,3\nd,1,2\n", "line 3 (data row 1)", "a missing cell", NULL},
        {"date,a,b,OT\nd,1,2,3,4\n", "line 2 (data row 0)", "an extra cell", NULL},
        {"date,a,b,OT\nd,1,2,3\nd,1,x2,3\n", "line 3 (data row 1), column 3 (b)", "expected a number, got \"x2\"", NULL},
        {"date,a,b,OT\nd,1,2,3\nd,nan,2,3\n", "line 3 (data row 1), column 2 (a)", "NaN", NULL},
        {"date,a,b,OT\nd,1,2,3\nd,1,2,1e99\n", "column 4 (OT)", "finite float32", NULL},
        {"date,a,b,OT\nd,1,2,3\n,1,2,3\n", "line 3 (data row 1), column 1 (date)", "date is empty", NULL},
        {"date,a,b,OT\nd,1,\"2\" x,3\n", "line 2", "malformed CSV", NULL},
        {"date\nd\n", "line 1", "the header has 1 column", NULL},
        {"", "no header line", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "csv: bad input %zu", i);
        int rc = open_csv(bad[i][0], 0, 2, 1, 1, 1, 1, &ds, &err);
        check_error(label, rc, &err, "/tmp/test_heads_csv_", bad[i][1], bad[i][2], NULL);
    }
}

// The generated series: a function of the seed, with its daily season.
static void check_seasonal(void) {
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_SEASONAL;
    o.train_rows = 2000, o.val_rows = 500, o.test_rows = 500, o.horizon = 24, o.n_series = 4;
    Dataset a, b, c;
    Error err;
    check(data_open(&a, &o, 48, &err) == 0 && data_open(&b, &o, 48, &err) == 0, "seasonal opens: %s", err.message);
    o.seed = 99;
    check(data_open(&c, &o, 48, &err) == 0, "seasonal opens with another seed");
    size_t n = (size_t)3000 * 4;
    check(memcmp(a.series, b.series, n * sizeof(float)) == 0, "seasonal: the same seed gives the same series");
    check(memcmp(a.series, c.series, n * sizeof(float)) != 0, "seasonal: another seed, another series");
    for (int f = 0; f < 4; f++) {
        // Autocorrelation over the training rows at a day (24 steps) against half a day.
        double r24 = 0.0, r12 = 0.0, r0 = 0.0;
        for (int t = 24; t < 2000; t++) {
            const float *x = a.series;
            r24 += x[t * 4 + f] * x[(t - 24) * 4 + f], r12 += x[t * 4 + f] * x[(t - 12) * 4 + f], r0 += x[t * 4 + f] * x[t * 4 + f];
        }
        check(r24 / r0 > 0.3 && r24 > r12 + 0.3 * r0, "seasonal series %d: autocorrelation %.2f at a day, %.2f at half a day",
              f, r24 / r0, r12 / r0);
    }
    float values[2 * 48 * 4], future[2 * 24 * 4];
    data_train_values(&a, 5, 2, 48, values, future);
    float again[2 * 48 * 4], future2[2 * 24 * 4];
    data_train_values(&b, 5, 2, 48, again, future2);
    check(memcmp(values, again, sizeof values) == 0 && memcmp(future, future2, sizeof future) == 0,
          "seasonal: training batch 5 is a function of the seed and its index");
    data_close(&a);
    data_close(&b);
    data_close(&c);
}

int main(void) {
    check_gradients();
    check_forecast_gradients();
    check_window_norm();
    check_csv();
    check_seasonal();
    check_listops();
    check_tsv();
    return check_summary("task heads and data");
}
