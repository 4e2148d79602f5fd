// Line plots as standalone SVG files (no plotting library needed to read a sweep's result).
#ifndef MP_RUN_PLOT_H
#define MP_RUN_PLOT_H

#include <stdio.h>

typedef struct PlotSeries {
    const char *name;         // legend text ("" for a single unnamed series)
    const double *x, *y;      // n points; a non-finite y is skipped
    int n;
} PlotSeries;

typedef struct Plot {
    const char *title, *x_label, *y_label;
    const char *const *x_categories;  // NULL: numeric x; else x are indices into these names
    int n_categories;
    double reference_y;               // a dashed horizontal line (e.g. the dense model), NAN for none
    const char *reference_name;
} Plot;

// Writes the plot of the series as an SVG document.
void plot_write_svg(FILE *out, const Plot *plot, const PlotSeries *series, int n_series);

#endif
