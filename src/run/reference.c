// The fair reference (see reference.h).
#include "run/reference.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/dist.h"
#include "core/input_file.h"
#include "run/prune_report.h"
#include "run/train_summary.h"
#include "run/trainer.h"

static const uint64_t fnv_offset = 14695981039346656037ull, fnv_prime = 1099511628211ull;

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * fnv_prime;
    return h;
}

// Adds a file's bytes to the hash, read in pieces (a checkpoint can be large).
static int hash_file(uint64_t *h, const char *path, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(err, "%s: cannot open the dense model to key its reference: %s", path, strerror(errno));
    unsigned char buffer[1 << 16];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) *h = fnv1a(*h, buffer, n);
    int failed = ferror(f);
    fclose(f);
    if (failed) return error_set(err, "%s: read failed while keying the reference", path);
    return 0;
}

// Whether a top-level section of the YAML dump leaves the dense fine-tuning unchanged.
static bool ignored_section(const char *line) {
    static const char *const ignored[] = {"prune:", "stability:", "checkpoint:", "log:", "sweep:"};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (strncmp(line, ignored[i], strlen(ignored[i])) == 0) return true;
    return false;
}

int reference_key(const RunConfig *c, uint64_t *key, Error *err) {
    uint64_t h = fnv_offset;
    char *yaml = config_to_yaml(c);
    bool skipping = false;
    for (char *line = yaml; *line;) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line + 1) : strlen(line);
        if (line[0] != ' ' && line[0] != '#' && line[0] != '\n') skipping = ignored_section(line);
        // model.init by its bytes below, not by its path.
        bool init = strncmp(line, "  init:", 7) == 0;
        if (!skipping && !init && line[0] != '#') h = fnv1a(h, line, n);
        line += n;
    }
    free(yaml);
    int rc = 0;
    if (strcmp(c->model.init, "random") != 0) {
        struct stat st;
        if (stat(c->model.init, &st) != 0)
            return error_set(err, "%s: model.init: cannot stat the dense model to key its reference: %s", c->model.init,
                             strerror(errno));
        h = fnv1a(h, "init", 4);
        if (S_ISDIR(st.st_mode)) {
            const char *names[] = {"config.json", "model.safetensors"};
            for (int i = 0; i < 2 && rc == 0; i++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", c->model.init, names[i]);
                struct stat file;
                h = fnv1a(h, names[i], strlen(names[i]));
                if (stat(path, &file) == 0) rc = hash_file(&h, path, err);
            }
        } else {
            rc = hash_file(&h, c->model.init, err);
        }
    }
    *key = h;
    return rc;
}

int reference_config(const RunConfig *c, RunConfig *reference, Error *err) {
    config_copy(reference, c);
    return config_set(reference, "prune.method=none", err);
}

static cJSON *read_json(const char *path, Error *err) {
    char *text = NULL;
    size_t size = 0;
    if (input_file_read(path, "report", INPUT_TEXT_MAX_BYTES, &text, &size, err) != 0) return NULL;
    cJSON *o = cJSON_ParseWithLength(text, size);
    free(text);
    if (!o) error_set(err, "%s: not valid JSON", path);
    return o;
}

int reference_attach(const RunConfig *c, const char *run_dir, Error *err) {
    if (c->prune.reference != CFG_REFERENCE_FINETUNED || c->prune.method == CFG_PRUNE_NONE) return 0;
    uint64_t key;
    if (reference_key(c, &key, err) != 0) return -1;
    char hex[17], ref_dir[4096];
    snprintf(hex, sizeof hex, "%016" PRIx64, key);
    snprintf(ref_dir, sizeof ref_dir, "%s/references/%s", c->log.dir, hex);
    TrainSummary summary;
    int found = train_summary_read(ref_dir, &summary, err);
    if (found < 0) return error_prefix(err, "the dense fine-tuned reference"), -1;
    if (found) {
        fprintf(stderr, "dense fine-tuned reference %s: finished before, reused\n", ref_dir);
    } else {
        fprintf(stderr, "dense fine-tuned reference: training it in %s\n", ref_dir);
        RunConfig reference;
        int rc = reference_config(c, &reference, err);
        if (rc == 0) rc = train_run(&reference, ref_dir, "latest", &summary, err);
        config_free(&reference);
        if (rc != 0) return error_prefix(err, "the dense fine-tuned reference in %s", ref_dir), -1;
    }
    if (!dist_is_root()) return 0;  // rank 0 alone rewrites the report
    char path[4096];
    snprintf(path, sizeof path, "%s/report.json", run_dir);
    cJSON *report = read_json(path, err);
    if (!report) return -1;
    cJSON *quality = cJSON_GetObjectItemCaseSensitive(report, "quality");
    cJSON *pruned = cJSON_GetObjectItemCaseSensitive(quality, "pruned");
    if (!cJSON_IsObject(quality) || !cJSON_IsObject(pruned)) {
        cJSON_Delete(report);
        return error_set(err, "%s: expected an object quality.pruned", path);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(quality, "dense_finetuned");
    cJSON_DeleteItemFromObjectCaseSensitive(quality, "perplexity_ratio_finetuned");
    cJSON *dft = cJSON_AddObjectToObject(quality, "dense_finetuned");
    cJSON_AddNumberToObject(dft, "val_loss", summary.val_loss);
    double ppl = summary.val_perplexity;
    cJSON_AddNumberToObject(dft, "val_perplexity", ppl);
    cJSON_AddNumberToObject(dft, "val_accuracy", summary.val_accuracy);
    cJSON_AddNumberToObject(dft, "val_tokens", (double)summary.val_tokens);
    cJSON_AddStringToObject(dft, "key", hex);
    cJSON_AddStringToObject(dft, "run_dir", ref_dir);
    const cJSON *pruned_ppl_item = cJSON_GetObjectItemCaseSensitive(pruned, "val_perplexity");
    double pruned_ppl = cJSON_IsNumber(pruned_ppl_item) ? pruned_ppl_item->valuedouble : 0.0;
    cJSON_AddNumberToObject(quality, "perplexity_ratio_finetuned", ppl > 0 ? pruned_ppl / ppl : 0.0);
    fprintf(stderr, "  dense fine-tuned perplexity %.3f: pruned / dense fine-tuned %.4f\n", ppl,
            ppl > 0 ? pruned_ppl / ppl : 0.0);
    int rc = prune_report_write(report, run_dir, err);
    cJSON_Delete(report);
    return rc;
}
