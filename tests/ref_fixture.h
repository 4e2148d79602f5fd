// The text fixtures that tools/ref_prune.py writes: named arrays, each "NAME ROWS COLS"
// followed by ROWS x COLS numbers. Shared by test_ref_prune and test_ref_walk.
#ifndef MP_TESTS_REF_FIXTURE_H
#define MP_TESTS_REF_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ARRAYS = 256 };

typedef struct Array {
    char name[96];
    int rows, cols;
    double *v;
} Array;

typedef struct Fixture {
    Array a[MAX_ARRAYS];
    int n;
} Fixture;

static int load_fixture(const char *path, Fixture *f) {
    FILE *in = fopen(path, "r");
    if (!in) return -1;
    f->n = 0;
    Array a;
    while (f->n < MAX_ARRAYS && fscanf(in, "%95s %d %d", a.name, &a.rows, &a.cols) == 3) {
        size_t n = (size_t)a.rows * a.cols;
        a.v = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            if (fscanf(in, "%lf", &a.v[i]) != 1) {
                free(a.v);
                fclose(in);
                return -1;
            }
        f->a[f->n++] = a;
    }
    fclose(in);
    return f->n > 0 ? 0 : -1;
}

static const Array *find(const Fixture *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->a[i].name, name) == 0) return &f->a[i];
    return NULL;
}

static void free_fixture(Fixture *f) {
    for (int i = 0; i < f->n; i++) free(f->a[i].v);
}

#endif
