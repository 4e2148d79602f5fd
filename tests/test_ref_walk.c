// The one-shot walk (oneshot_prune_inputs, the walk of oneshot_prune) against the
// PyTorch reference of tools/ref_prune.py --walk, which wrote fixtures/ref_walk.txt from
// the calibration windows that tools/dump_calibration.c dumped of a small trained model
// (2 blocks, d_model 16, d_state 8, trained on text). The reference calibrates block 1 on
// the outputs of its own pruned block 0, and each linear layer of a block on its input
// recomputed with the layers before it pruned. For sparsegpt and wanda at 50% and
// sparsegpt at 2:4: block 1's calibration input equals the reference's within 1e-4
// relative, the masks agree (except at ties), the pruned weights within 1e-4 relative,
// and every layer's ||WX - W'X|| on its own input within 1e-4 relative. The fixture:
//   ./build/mambaprune train --config configs/train_text.yaml --set data.path=../shared/data/tinyshakespeare.txt
//       --set model.d_model=16 --set model.n_layer=2 --set model.d_state=8 --set train.steps=1500
//       --set train.seqlen=64 --set train.eval_every=0 --set optim.lr=3e-3 --set log.name=tiny_ref
//   (one command)
//   ./build/dump_calibration runs/tiny_ref/ckpt-00001500.h5 ../shared/data/tinyshakespeare.txt 4 32 1234 dump.txt
//   /usr/bin/python3 tools/ref_prune.py --walk dump.txt tests/fixtures/ref_walk.txt
#include <math.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "check.h"
#include "ref_fixture.h"
#include "prune/oneshot.h"

static const char *const linear_names[4] = {"in_proj", "x_proj", "dt_proj", "out_proj"};

static Tensor *linear_of(MambaLayer *layer, int k) {
    Tensor *t[4] = {&layer->in_proj_weight, &layer->x_proj_weight, &layer->dt_proj_weight, &layer->out_proj_weight};
    return t[k];
}

// The fixture's model: every block parameter from the fixture (no embedding: the walk
// starts from the dumped inputs).
static int load_model(const Fixture *f, MambaModel *model, int *nsamples, int *seqlen) {
    const Array *dims = find(f, "dims");
    if (!dims || dims->cols != 9) return -1;
    MambaConfig c;
    mamba_config_defaults(&c);
    c.d_model = (int)dims->v[0], c.n_layer = (int)dims->v[1], c.d_state = (int)dims->v[2];
    c.d_conv = (int)dims->v[3], c.expand = (int)dims->v[4], c.dt_rank = (int)dims->v[5];
    c.norm_eps = (float)dims->v[6];
    c.vocab_size = 8;
    *nsamples = (int)dims->v[7], *seqlen = (int)dims->v[8];
    Error err;
    if (mamba_config_finish(&c, &err)) return -1;
    mamba_model_create(model, &c);
    for (int k = 0; k < model->n_params; k++) {
        const char *name = model->params[k].name;
        if (strncmp(name, "backbone.layers.", 16) != 0) continue;
        const Array *a = find(f, name);
        Tensor *t = model->params[k].tensor;
        if (!a || (size_t)a->rows * a->cols != t->size) {
            check(0, "%s: in the fixture with %zu values", name, t->size);
            return -1;
        }
        for (size_t i = 0; i < t->size; i++) t->data[i] = (float)a->v[i];
    }
    return 0;
}

static double max_rel_diff(const float *x, const double *ref, size_t n) {
    double scale = 0.0, diff = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) diff = fmax(diff, fabs(x[i] - ref[i]));
    return scale > 0 ? diff / scale : diff;
}

static void compare_case(const Fixture *f, const char *tcase, PruneMethod method, int nm_n, int nm_m) {
    MambaModel dense, model;
    int nsamples, seqlen;
    if (load_model(f, &dense, &nsamples, &seqlen) || load_model(f, &model, &nsamples, &seqlen)) {
        check(0, "%s: the fixture's model", tcase);
        return;
    }
    const MambaConfig *c = &model.config;
    bool with_dt = nm_m == 0;  // dt_proj's rows (R = 1) do not split into groups of 4
    bool prunable[256] = {false};
    for (int k = 0; k < model.n_params && k < 256; k++) {
        const char *name = model.params[k].name;
        for (int j = 0; j < 4; j++) {
            char pattern[48];
            snprintf(pattern, sizeof pattern, "mixer.%s.weight", linear_names[j]);
            if (strstr(name, pattern) && (j != 2 || with_dt)) prunable[k] = true;
        }
    }
    PruneMasks masks;
    prune_masks_create(&masks, &model, prunable);
    PruneOptions o = {0};
    o.method = method;
    o.final_sparsity = 0.5;
    o.nm_n = nm_n, o.nm_m = nm_m;
    o.percdamp = 0.01;
    o.blocksize = 16;
    o.batch_size = 3;  // batches of 3 windows: the statistics add up over batches
    const Array *inputs = find(f, "inputs");
    size_t rows = (size_t)nsamples * seqlen, block_floats = rows * c->d_model;
    float *x0 = malloc(block_floats * sizeof(float));
    for (size_t i = 0; i < block_floats; i++) x0[i] = (float)inputs->v[i];
    float *block_inputs = malloc((size_t)c->n_layer * block_floats * sizeof(float));
    cJSON *report = cJSON_CreateObject();
    Error err;
    int rc = oneshot_prune_inputs(&o, x0, nsamples, seqlen, &model, &masks, block_inputs, report, &err);
    check(rc == 0, "%s: the walk runs (%s)", tcase, rc ? err.message : "");
    if (rc == 0) {
        Tape tape;
        tape_init(&tape, 16u << 20);
        tape.recording = false;
        for (int i = 0; i < c->n_layer; i++) {
            char name[160];
            float *x = block_inputs + (size_t)i * block_floats;
            if (i > 0) {
                snprintf(name, sizeof name, "%s.block_input.%d", tcase, i);
                const Array *ref = find(f, name);
                double d = ref ? max_rel_diff(x, ref->v, block_floats) : INFINITY;
                check(d < 1e-4, "%s: block %d's calibration input (the pruned block %d's output) as the reference's "
                                "(max |diff| / max |x| = %.2e)", tcase, i, i - 1, d);
            }
            for (int k = 0; k < 4; k++) {
                if (k == 2 && !with_dt) continue;
                Tensor *w = linear_of(&model.layers[i], k), *w_dense = linear_of(&dense.layers[i], k);
                snprintf(name, sizeof name, "%s.backbone.layers.%d.mixer.%s.keep", tcase, i, linear_names[k]);
                const Array *ref_keep = find(f, name);
                snprintf(name, sizeof name, "%s.backbone.layers.%d.mixer.%s.weight", tcase, i, linear_names[k]);
                const Array *ref_w = find(f, name);
                snprintf(name, sizeof name, "%s.backbone.layers.%d.mixer.%s.recon", tcase, i, linear_names[k]);
                const Array *ref_recon = find(f, name);
                snprintf(name, sizeof name, "backbone.layers.%d.mixer.%s.weight", i, linear_names[k]);
                MaskedTensor *m = prune_masks_find(&masks, name);
                if (!ref_keep || !ref_w || !ref_recon || !m) {
                    check(0, "%s: %s in the fixture and masked", tcase, name);
                    continue;
                }
                size_t differ = 0;
                for (size_t j = 0; j < w->size; j++) differ += m->keep[j] != (uint8_t)ref_keep->v[j];
                check(differ == 0, "%s: %s: masks as the reference's (%zu of %zu differ)", tcase, name, differ,
                      w->size);
                double d = max_rel_diff(w->data, ref_w->v, w->size);
                check(d < 1e-4, "%s: %s: pruned weights within 1e-4 of the reference's (max |diff| / max |w| = %.2e)",
                      tcase, name, d);
                // The layer's input in the walk: the block with the layers before it pruned.
                MambaLayer mixed = dense.layers[i];
                for (int j = 0; j < k; j++) *linear_of(&mixed, j) = *linear_of(&model.layers[i], j);
                tape_reset(&tape);
                MambaBlockTrace trace;
                Tensor *xt = tensor_view(&tape, x, 2, (int[]){(int)rows, c->d_model});
                mamba_block_forward(&tape, c, &mixed, xt, nsamples, seqlen, &trace);
                const Tensor *in[4] = {trace.u, trace.xs, trace.delta, trace.gated};
                int out_rows = w->shape[0], cols = w->shape[1];
                double sum = 0.0;
                for (int r = 0; r < out_rows; r++)
                    for (size_t t = 0; t < rows; t++) {
                        double e = 0.0;
                        for (int j = 0; j < cols; j++)
                            e += ((double)w_dense->data[(size_t)r * cols + j] - w->data[(size_t)r * cols + j]) *
                                 in[k]->data[t * cols + j];
                        sum += e * e;
                    }
                double recon = sqrt(sum), ref = ref_recon->v[0];
                check(fabs(recon - ref) <= 1e-4 * ref, "%s: %s: ||WX - W'X|| %.6g, reference %.6g", tcase, name,
                      recon, ref);
            }
        }
        tape_free(&tape);
    }
    cJSON_Delete(report);
    free(x0), free(block_inputs);
    prune_masks_free(&masks);
    mamba_model_free(&model);
    mamba_model_free(&dense);
}

int main(void) {
    Fixture f;
    if (load_fixture("fixtures/ref_walk.txt", &f) || !find(&f, "dims") || !find(&f, "inputs")) {
        check(0, "load fixtures/ref_walk.txt (run from tests/)");
        return check_summary("test_ref_walk");
    }
    compare_case(&f, "sparsegpt_unstructured", PRUNE_METHOD_SPARSEGPT, 0, 0);
    compare_case(&f, "wanda_unstructured", PRUNE_METHOD_WANDA, 0, 0);
    compare_case(&f, "sparsegpt_nm24", PRUNE_METHOD_SPARSEGPT, 2, 4);
    free_fixture(&f);
    return check_summary("test_ref_walk");
}
