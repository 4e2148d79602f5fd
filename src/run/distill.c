// Fine-tuning against the dense teacher (see distill.h).
#include "run/distill.h"

#include <string.h>

#include "autograd/ops.h"
#include "run/model_source.h"

int distill_init(Distiller *d, const RunConfig *c, const MambaModel *student, Error *err) {
    memset(d, 0, sizeof *d);
    if (c->prune.distill_weight <= 0) return 0;
    if (strcmp(c->model.init, "random") == 0)
        return error_set(err, "prune.distill_weight: distillation needs a dense teacher, the model.init to prune; "
                              "model.init is \"random\"");
    if (model_load(c->model.init, &d->teacher, err) != 0) return error_prefix(err, "the teacher (model.init)");
    if (d->teacher.config.vocab_padded != student->config.vocab_padded || d->teacher.config.head != MAMBA_HEAD_LM ||
        student->config.head != MAMBA_HEAD_LM) {
        int rc = error_set(err, "%s: the teacher has %d token ids, the student %d; distillation needs the same "
                                "vocabulary and the lm head",
                           c->model.init, d->teacher.config.vocab_padded, student->config.vocab_padded);
        mamba_model_free(&d->teacher);
        return rc;
    }
    d->on = true;
    d->weight = (float)c->prune.distill_weight;
    d->temperature = (float)c->prune.distill_temperature;
    return 0;
}

void distill_free(Distiller *d) {
    if (d->on) mamba_model_free(&d->teacher);
    memset(d, 0, sizeof *d);
}

Tensor *distill_loss(Distiller *d, Tape *tape, MambaModel *model, const int32_t *tokens, const int32_t *targets,
                     int batch, int seqlen) {
    if (!d->on) return mamba_forward(tape, model, tokens, targets, batch, seqlen, NULL);
    Tensor *teacher_logits = NULL;
    bool recording = tape->recording;
    tape->recording = false;
    mamba_forward(tape, &d->teacher, tokens, targets, batch, seqlen, &teacher_logits);
    tape->recording = recording;
    Tensor *logits = NULL;
    Tensor *ce = mamba_forward(tape, model, tokens, targets, batch, seqlen, &logits);
    Tensor *kl = op_kl_distill(tape, logits, teacher_logits->data, targets, batch * seqlen, d->temperature);
    return op_mix_scalars(tape, ce, kl, 1.0f - d->weight, d->weight);
}
