// mambaprune's command line: `mambaprune COMMAND [options]`. Parses arguments, reports
// errors and chooses exit codes; the work itself is in the library.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"
#include "cli/trainer.h"

static const char usage[] =
    "usage: mambaprune train --config FILE [--set section.key=value ...]\n"
    "       mambaprune config-reference        (every config key, as Markdown)\n"
    "\n"
    "  train   trains (and later prunes) a Mamba LM as the YAML config says; the run folder\n"
    "          is log.dir/log.name (config.yaml, metrics.jsonl). Any key can be overridden\n"
    "          with --set, e.g. --set train.steps=200 --set data.kind=text --set data.path=FILE\n";

static int command_train(int argc, char **argv) {
    const char *config_path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_path = argv[++i];
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) i++;
        else {
            fprintf(stderr, "mambaprune train: unexpected argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!config_path) {
        fprintf(stderr, "mambaprune train: --config FILE is required\n\n%s", usage);
        return 2;
    }
    RunConfig config;
    Error err;
    int rc = config_load_file(&config, config_path, &err);
    for (int i = 0; rc == 0 && i < argc; i++)
        if (strcmp(argv[i], "--set") == 0) rc = config_set(&config, argv[++i], &err);
    if (rc == 0) rc = config_check(&config, &err);
    if (rc == 0 && config_sweep_count(&config) > 1)
        rc = error_set(&err, "%s: this config has a sweep section; running sweeps is not implemented yet",
                       config_path);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return 2;
    }
    char name[256], run_dir[4096];
    config_run_name(&config, name, sizeof name);
    snprintf(run_dir, sizeof run_dir, "%s/%s", config.log.dir, name);
    TrainSummary summary;
    rc = train_run(&config, run_dir, &summary, &err);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return 1;
    }
    fprintf(stderr,
            "done: %ld steps, train loss %.4f, validation loss %.4f (perplexity %.3f, accuracy %.4f over %ld "
            "targets), %.0f tokens/s, %.1f s\n",
            summary.steps, summary.train_loss, summary.val_loss, summary.val_perplexity, summary.val_accuracy,
            summary.val_tokens, summary.tokens_per_s, summary.wall_s);
    config_free(&config);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0) return command_train(argc - 2, argv + 2);
    if (strcmp(argv[1], "config-reference") == 0) {
        config_write_reference_markdown(stdout);
        return 0;
    }
    fprintf(stderr, "mambaprune: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
