/* A plain C tape: the reference floor of the replay benchmarks.
 *
 * The same scalar program the replay workloads run, as a flat tape of op
 * codes and child positions, replayed forward and backward in plain C
 * (-O2, no fast-math), with the same math as micrograd_fast's ops.  It reads
 * the tape from a file written by benchmarks/workloads/replay.py:
 *
 *   line 1:  n reps
 *   n lines: op a b param data      (op: the names below; a, b: child rows,
 *                                    -1 if none; a SUM row lists its children
 *                                    on the next line: count c0 c1 ...)
 *
 * and prints the median nanoseconds of one forward + backward pass, then the
 * root's data and the first leaf's grad (so the caller can check the tape
 * computes what the engine computes).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { LEAF, ADD, MUL, POWC, POWV, RELU, TANH, EXP, LOG, SIGMOID, GELU, SUM };
static const char *names[] = {"LEAF", "ADD", "MUL", "POWC", "POWV", "RELU",
                              "TANH", "EXP", "LOG", "SIGMOID", "GELU", "SUM"};

typedef struct {
    int op, a, b, n, off;
    double param;
} row;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double tanh_lecture(double x) {
    double e = exp(2.0 * x);
    if (isinf(e) && e > 0.0) return tanh(x);
    return (e - 1.0) / (e + 1.0);
}

static double sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}

int main(int argc, char **argv) {
    FILE *f;
    int n, reps, i, j, k, nk = 0, cap = 1024;
    row *t;
    int *kids;
    double *data, *grad, *times;
    char op[16];
    if (argc != 2 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: tape FILE\n");
        return 2;
    }
    if (fscanf(f, "%d %d", &n, &reps) != 2) return 2;
    t = calloc(n, sizeof(row));
    data = calloc(n, sizeof(double));
    grad = calloc(n, sizeof(double));
    kids = malloc(cap * sizeof(int));
    times = calloc(reps, sizeof(double));
    for (i = 0; i < n; i++) {
        if (fscanf(f, "%15s %d %d %lf %lf", op, &t[i].a, &t[i].b, &t[i].param, &data[i]) != 5)
            return 2;
        for (k = 0; k < 12 && strcmp(op, names[k]); k++) {}
        if (k == 12) return 2;
        t[i].op = k;
        if (k == SUM) {
            if (fscanf(f, "%d", &t[i].n) != 1) return 2;
            t[i].off = nk;
            for (j = 0; j < t[i].n; j++) {
                if (nk == cap) kids = realloc(kids, (cap *= 2) * sizeof(int));
                if (fscanf(f, "%d", &kids[nk++]) != 1) return 2;
            }
        }
    }
    fclose(f);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (i = 0; i < n; i++) {  /* forward */
            row *o = &t[i];
            double x = o->a >= 0 ? data[o->a] : 0.0, y = o->b >= 0 ? data[o->b] : 0.0;
            switch (o->op) {
            case ADD: data[i] = x + y; break;
            case MUL: data[i] = x * y; break;
            case POWC: data[i] = pow(x, o->param); break;
            case POWV: data[i] = pow(x, y); break;
            case RELU: data[i] = x < 0.0 ? 0.0 : x; break;
            case TANH: data[i] = tanh_lecture(x); break;
            case EXP: data[i] = exp(x); break;
            case LOG: data[i] = log(x); break;
            case SIGMOID: data[i] = sigmoid(x); break;
            case GELU: data[i] = x * 0.5 * (1.0 + erf(x * 0.7071067811865476)); break;
            case SUM: {
                double acc = o->param;
                for (j = 0; j < o->n; j++) acc = acc + data[kids[o->off + j]];
                data[i] = acc;
                break;
            }
            default: break;
            }
            grad[i] = 0.0;
        }
        grad[n - 1] = 1.0;
        for (i = n - 1; i >= 0; i--) {  /* backward */
            row *o = &t[i];
            double g = grad[i];
            switch (o->op) {
            case ADD: grad[o->a] += g; grad[o->b] += g; break;
            case MUL: grad[o->a] += data[o->b] * g; grad[o->b] += data[o->a] * g; break;
            case POWC:
                grad[o->a] += (o->param * pow(data[o->a], o->param - 1.0)) * g;
                break;
            case POWV: {
                double xd = data[o->a], e = data[o->b];
                grad[o->a] += (e * pow(xd, e - 1.0)) * g;
                grad[o->b] += (xd > 0.0 ? data[i] * log(xd) : 0.0) * g;
                break;
            }
            case RELU: grad[o->a] += (double)(data[i] > 0) * g; break;
            case TANH: grad[o->a] += (1.0 - pow(data[i], 2.0)) * g; break;
            case EXP: grad[o->a] += data[i] * g; break;
            case LOG: grad[o->a] += (1.0 / data[o->a]) * g; break;
            case SIGMOID: grad[o->a] += (data[i] * (1.0 - data[i])) * g; break;
            case GELU: {
                double x = data[o->a];
                double cdf = 0.5 * (1.0 + erf(x * 0.7071067811865476));
                double pdf = 0.3989422804014327 * exp(x * x * -0.5);
                grad[o->a] += (cdf + x * pdf) * g;
                break;
            }
            case SUM:
                for (j = 0; j < o->n; j++) grad[kids[o->off + j]] += g;
                break;
            default: break;
            }
        }
        times[r] = now() - t0;
    }
    qsort(times, reps, sizeof(double), cmp);
    printf("%.1f %.17g %.17g\n", times[reps / 2], data[n - 1], grad[0]);
    return 0;
}
