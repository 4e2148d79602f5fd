// SVG line plots (see plot.h).
#include "run/plot.h"

#include <math.h>

enum { WIDTH = 720, HEIGHT = 440, LEFT = 80, RIGHT = 200, TOP = 50, BOTTOM = 70 };

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"};

// Writes text with the characters that XML reserves escaped.
static void write_escaped(FILE *out, const char *text) {
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*p, out);
        }
    }
}

typedef struct Range {
    double lo, hi;
} Range;

static void widen(Range *r, double v) {
    if (!isfinite(v)) return;
    if (v < r->lo) r->lo = v;
    if (v > r->hi) r->hi = v;
}

// Pads a range by 5% on each side (and gives a flat one some height).
static void pad(Range *r) {
    if (r->lo > r->hi) *r = (Range){0, 1};
    double span = r->hi - r->lo;
    if (span <= 0) span = fabs(r->hi) > 0 ? fabs(r->hi) * 0.1 : 1.0;
    r->lo -= 0.05 * span;
    r->hi += 0.05 * span;
}

static double to_px_x(const Range *r, double x) {
    return LEFT + (x - r->lo) / (r->hi - r->lo) * (WIDTH - LEFT - RIGHT);
}

static double to_px_y(const Range *r, double y) {
    return HEIGHT - BOTTOM - (y - r->lo) / (r->hi - r->lo) * (HEIGHT - TOP - BOTTOM);
}

void plot_write_svg(FILE *out, const Plot *plot, const PlotSeries *series, int n_series) {
    Range xr = {INFINITY, -INFINITY}, yr = {INFINITY, -INFINITY};
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            if (!isfinite(series[s].y[i])) continue;
            widen(&xr, series[s].x[i]);
            widen(&yr, series[s].y[i]);
        }
    if (plot->x_categories) xr = (Range){-0.5, plot->n_categories - 0.5};
    else pad(&xr);
    widen(&yr, plot->reference_y);
    pad(&yr);

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                 "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", WIDTH, HEIGHT);
    fprintf(out, "<text x=\"%d\" y=\"28\" font-size=\"15\">", LEFT);
    write_escaped(out, plot->title);
    fprintf(out, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", LEFT, TOP,
            WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    // Five ticks on y; on x the categories, or five ticks.
    for (int i = 0; i <= 4; i++) {
        double y = yr.lo + (yr.hi - yr.lo) * i / 4.0;
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", LEFT - 6, to_px_y(&yr, y) + 4, y);
    }
    if (plot->x_categories) {
        for (int i = 0; i < plot->n_categories; i++) {
            fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", to_px_x(&xr, i), HEIGHT - BOTTOM + 18);
            write_escaped(out, plot->x_categories[i]);
            fprintf(out, "</text>\n");
        }
    } else {
        for (int i = 0; i <= 4; i++) {
            double x = xr.lo + (xr.hi - xr.lo) * i / 4.0;
            fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.4g</text>\n", to_px_x(&xr, x),
                    HEIGHT - BOTTOM + 18, x);
        }
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + WIDTH - RIGHT) / 2, HEIGHT - 20);
    write_escaped(out, plot->x_label);
    fprintf(out, "</text>\n<text transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\">",
            (TOP + HEIGHT - BOTTOM) / 2);
    write_escaped(out, plot->y_label);
    fprintf(out, "</text>\n");

    int legend_y = TOP + 10;
    if (isfinite(plot->reference_y)) {
        double y = to_px_y(&yr, plot->reference_y);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#777\" stroke-dasharray=\"6 4\"/>\n",
                LEFT, y, WIDTH - RIGHT, y);
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#777\" stroke-dasharray=\"6 4\"/>",
                WIDTH - RIGHT + 12, legend_y, WIDTH - RIGHT + 32, legend_y);
        fprintf(out, "<text x=\"%d\" y=\"%d\">", WIDTH - RIGHT + 38, legend_y + 4);
        write_escaped(out, plot->reference_name);
        fprintf(out, "</text>\n");
        legend_y += 18;
    }
    for (int s = 0; s < n_series; s++) {
        const char *color = colors[s % (int)(sizeof colors / sizeof colors[0])];
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
        for (int i = 0; i < series[s].n; i++)
            if (isfinite(series[s].y[i]))
                fprintf(out, "%.1f,%.1f ", to_px_x(&xr, series[s].x[i]), to_px_y(&yr, series[s].y[i]));
        fprintf(out, "\"/>\n");
        for (int i = 0; i < series[s].n; i++)
            if (isfinite(series[s].y[i]))
                fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", to_px_x(&xr, series[s].x[i]),
                        to_px_y(&yr, series[s].y[i]), color);
        if (series[s].name && series[s].name[0]) {
            fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"20\" height=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
                    WIDTH - RIGHT + 12, legend_y - 2, color, WIDTH - RIGHT + 38, legend_y + 4);
            write_escaped(out, series[s].name);
            fprintf(out, "</text>\n");
            legend_y += 18;
        }
    }
    fprintf(out, "</svg>\n");
}
