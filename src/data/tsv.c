// Text classification from a TSV file: one example per line, "label<TAB>text", the label
// a non-negative integer, the text raw bytes (token = byte + 1; 0 is padding). A
// malformed line is an error naming the file and the line.
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

int tsv_load(Dataset *ds, const char *path, Error *err) {
    uint8_t *file;
    long size;
    if (data_read_file(path, &file, &size, err)) return -1;
    long capacity = 1;
    for (long i = 0; i < size; i++) capacity += file[i] == '\n';
    ds->bytes = file;
    ds->line_span = xmalloc(sizeof(long) * 2 * (size_t)capacity);
    ds->line_label = xmalloc(sizeof(int32_t) * (size_t)capacity);
    long n = 0, max_label = -1;
    for (long pos = 0, line = 1; pos < size; line++) {
        long end = pos;
        while (end < size && file[end] != '\n') end++;
        long stop = end > pos && file[end - 1] == '\r' ? end - 1 : end;  // CRLF
        if (stop > pos) {  // empty lines are skipped
            long tab = pos;
            while (tab < stop && file[tab] != '\t') tab++;
            if (tab == stop) return error_set(err, "%s:%ld: expected \"label<TAB>text\", found no tab", path, line);
            long label = 0;
            if (tab == pos) return error_set(err, "%s:%ld: the label (column 1) is empty", path, line);
            for (long k = pos; k < tab; k++) {
                if (file[k] < '0' || file[k] > '9' || label > 100000)
                    return error_set(err, "%s:%ld: the label (column 1) '%.*s' is not an integer in 0 .. 100000", path,
                                     line, (int)(tab - pos < 40 ? tab - pos : 40), (const char *)file + pos);
                label = label * 10 + (file[k] - '0');
            }
            if (tab + 1 == stop) return error_set(err, "%s:%ld: the text (column 2) is empty", path, line);
            ds->line_span[2 * n] = tab + 1;
            ds->line_span[2 * n + 1] = stop;
            ds->line_label[n] = (int32_t)label;
            if (label > max_label) max_label = label;
            n++;
        }
        pos = end + 1;
    }
    if (n == 0) return error_set(err, "%s: no \"label<TAB>text\" line", path);
    if (max_label < 1) return error_set(err, "%s: every label is %ld: classification needs at least 2 classes", path, max_label);
    ds->n_lines = n;
    ds->n_classes = (int)max_label + 1;
    return 0;
}

void tsv_row(const Dataset *ds, long i, int L, int32_t *tokens, int32_t *targets) {
    long start = ds->line_span[2 * i], stop = ds->line_span[2 * i + 1];
    int n = stop - start < L ? (int)(stop - start) : L;  // longer texts are cut to L bytes
    for (int t = 0; t < L; t++) {
        tokens[t] = t < n ? (int32_t)ds->bytes[start + t] + 1 : 0;
        targets[t] = -1;
    }
    targets[n - 1] = ds->line_label[i];
}
