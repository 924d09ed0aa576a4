#include "watch_layout.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_COL_MAX 32 /* columns a text cell may take before it is cut (the last one is '~') */
#define ELASTIC_MIN 8   /* an elastic column narrower than this is dropped */
#define GAP 2           /* spaces between columns */

/* --- text ------------------------------------------------------------------------------ */

size_t
watch_text_cols(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

/* The byte length of the first cols columns of s (all of it when shorter). */
static size_t
bytes_for_cols(const char *s, size_t cols)
{
    size_t i = 0, c = 0;
    while (s[i] != '\0') {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (c == cols) {
                break;
            }
            c++;
        }
        i++;
    }
    return i;
}

/* --- lines ----------------------------------------------------------------------------- */

void
watch_lines_init(struct watch_lines *l)
{
    memset(l, 0, sizeof(*l));
}

void
watch_lines_clear(struct watch_lines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].text);
    }
    l->n = 0;
}

void
watch_lines_fini(struct watch_lines *l)
{
    watch_lines_clear(l);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int
watch_lines_add(struct watch_lines *l, enum watch_line_kind kind, const char *s,
                unsigned width)
{
    size_t n = width > 0 ? bytes_for_cols(s, width) : strlen(s);

    while (n > 0 && s[n - 1] == ' ') {
        n--;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 64;
        struct watch_line *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return SL_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    char *t = malloc(n + 1);
    if (t == NULL) {
        return SL_ENOMEM;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    l->v[l->n++] = (struct watch_line){ kind, t };
    return 0;
}

int
watch_lines_addf(struct watch_lines *l, enum watch_line_kind kind, unsigned width,
                 const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return watch_lines_add(l, kind, buf, width);
}

/* Moves the line at index i of from to the end of to. */
int
watch_lines_take(struct watch_lines *to, struct watch_lines *from, size_t i)
{
    if (watch_lines_add(to, from->v[i].kind, "", 0) != 0) {
        return SL_ENOMEM;
    }
    free(to->v[to->n - 1].text);
    to->v[to->n - 1].text = from->v[i].text;
    from->v[i].text = NULL;
    return 0;
}

/* --- tables ---------------------------------------------------------------------------- */


void
watch_grid_init(struct watch_grid *g)
{
    memset(g, 0, sizeof(*g));
}

void
watch_grid_fini(struct watch_grid *g)
{
    for (size_t i = 0; i < g->ncells; i++) {
        free(g->cells[i]);
    }
    free(g->cells);
}

void
watch_grid_col(struct watch_grid *g, const char *title, bool right, bool elastic)
{
    g->title[g->ncols] = title;
    g->right[g->ncols] = right;
    g->elastic[g->ncols] = elastic;
    g->ncols++;
}

void
watch_grid_cell(struct watch_grid *g, const char *s)
{
    if (g->nomem) {
        return;
    }
    if (g->ncells == g->cap) {
        size_t cap = g->cap > 0 ? g->cap * 2 : 64;
        char **c = realloc(g->cells, cap * sizeof(*c));
        if (c == NULL) {
            g->nomem = true;
            return;
        }
        g->cells = c;
        g->cap = cap;
    }
    if ((g->cells[g->ncells] = strdup(s)) == NULL) {
        g->nomem = true;
        return;
    }
    g->ncells++;
}

/* Appends cell s to line at *o (cap bytes), in w columns. */
static void
put_cell(char *line, size_t cap, size_t *o, const char *s, size_t w, bool right, bool keep_end)
{
    size_t cols = watch_text_cols(s), pad = 0;
    const char *p = s;
    size_t n;
    bool cut = false;

    if (cols > w) {
        if (keep_end) {
            p = s + bytes_for_cols(s, cols - w);
            n = strlen(p);
        } else {
            n = bytes_for_cols(s, w > 0 ? w - 1 : 0);
            cut = w > 0;
        }
    } else {
        n = strlen(s);
        pad = w - cols;
    }
    if (*o + pad + n + 2 >= cap) {
        return;
    }
    if (right) {
        memset(line + *o, ' ', pad);
        *o += pad;
    }
    memcpy(line + *o, p, n);
    *o += n;
    if (cut) {
        line[(*o)++] = '~';
    }
    if (!right) {
        memset(line + *o, ' ', pad);
        *o += pad;
    }
    line[*o] = '\0';
}

/* Lays g out at width (0: unlimited) into out: a header line, then one line per row. */
int
watch_grid_render(const struct watch_grid *g, unsigned width, struct watch_lines *out)
{
    size_t w[WATCH_GRID_COLS];
    unsigned vis = 0;
    size_t used = 0;
    char line[2048];
    int rv = 0;

    if (g->nomem) {
        return SL_ENOMEM;
    }
    for (unsigned c = 0; c < g->ncols; c++) {
        w[c] = watch_text_cols(g->title[c]);
        for (size_t i = c; i < g->ncells; i += g->ncols) {
            size_t n = watch_text_cols(g->cells[i]);
            w[c] = n > w[c] ? n : w[c];
        }
        if (!g->right[c] && !g->elastic[c] && w[c] > TEXT_COL_MAX) {
            w[c] = TEXT_COL_MAX;
        }
    }
    /* Columns from the left while they fit; an elastic one shrinks to what is left. */
    for (unsigned c = 0; c < g->ncols; c++) {
        size_t gap = c > 0 ? GAP : 0;
        if (width == 0 || used + gap + w[c] <= width) {
            used += gap + w[c];
            vis++;
            continue;
        }
        if (c == 0) {
            w[0] = width;
            used = width;
            vis = 1;
            continue;
        }
        if (g->elastic[c] && width > used + gap && width - used - gap >= ELASTIC_MIN) {
            w[c] = width - used - gap;
            vis++;
        }
        break;
    }
    size_t nrows = g->ncols > 0 ? g->ncells / g->ncols : 0;
    for (size_t r = 0; rv == 0 && r <= nrows; r++) {
        size_t o = 0;
        line[0] = '\0';
        for (unsigned c = 0; c < vis; c++) {
            const char *s = r == 0 ? g->title[c] : g->cells[(r - 1) * g->ncols + c];
            if (c > 0) {
                put_cell(line, sizeof(line), &o, "", GAP, false, false);
            }
            put_cell(line, sizeof(line), &o, s, w[c], g->right[c], g->elastic[c] && r > 0);
        }
        rv = watch_lines_add(out, r == 0 ? WATCH_LINE_HEADER : WATCH_LINE_TEXT, line, width);
    }
    return rv;
}
