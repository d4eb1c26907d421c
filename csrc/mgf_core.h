/*
 * mgf_core.h - the node arena of micrograd_fast, in plain C99.
 *
 * This header holds what does not need Python: the node layout, the op
 * codes, growth of the arrays, and each op's forward value and local chain
 * rule.  The Cython core (micrograd_fast/_engine.pyx) owns the arena's life
 * cycle (handles, reclamation, the backward sweep) and calls in here.
 *
 * Memory comes from MGF_REALLOC / MGF_FREE, realloc/free unless the build
 * defines them (the extension maps them to Python's raw allocator so that
 * tracemalloc accounts for the arena).
 */
#ifndef MGF_CORE_H
#define MGF_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef MGF_REALLOC
#define MGF_REALLOC realloc
#endif
#ifndef MGF_FREE
#define MGF_FREE free
#endif

#if defined(_MSC_VER)
#define MGF_INLINE static __forceinline
#elif defined(__GNUC__) || defined(__clang__)
#define MGF_INLINE static inline __attribute__((always_inline))
#else
#define MGF_INLINE static inline
#endif

/* MGF_ASSERT(cond): aborts with file and line when cond is false, in builds
 * that define MGF_DEBUG; compiles to nothing otherwise. */
#ifdef MGF_DEBUG
#include <stdio.h>
#define MGF_ASSERT(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: micrograd_fast assertion failed: %s\n",     \
                    __FILE__, __LINE__, #cond);                                 \
            abort();                                                            \
        }                                                                       \
    } while (0)
#else
#define MGF_ASSERT(cond) ((void)0)
#endif

/* Op codes.  The matching pure-Python rule is named after each one. */
enum {
    MGF_LEAF = 0,    /* Value(x): no children                          */
    MGF_ADD = 1,     /* Value.__add__                                  */
    MGF_MUL = 2,     /* Value.__mul__                                  */
    MGF_POWC = 3,    /* Value.__pow__ with a number (param = exponent) */
    MGF_POWV = 4,    /* Value._pow_value: Value ** Value               */
    MGF_RELU = 5,    /* Value.relu                                     */
    MGF_TANH = 6,    /* Value.tanh                                     */
    MGF_EXP = 7,     /* Value.exp                                      */
    MGF_LOG = 8,     /* Value.log                                      */
    MGF_SIGMOID = 9, /* Value.sigmoid                                  */
    MGF_SUM = 10,    /* vsum: n-ary sum                                */
    MGF_NEURON = 11, /* layer: act(b + sum w_i x_i), aux = activation  */
    MGF_CUSTOM = 12  /* Value(data, children, op): rule given in Python */
};

/* Activations of MGF_NEURON (node.aux). */
enum { MGF_ACT_LINEAR = 0, MGF_ACT_RELU = 1, MGF_ACT_TANH = 2, MGF_ACT_SIGMOID = 3 };

/* Node flags. */
#define MGF_F_PYBW 0x01   /* backward calls the handle's Python _backward  */
#define MGF_F_PINNED 0x02 /* the arena holds a strong ref to the handle    */
#define MGF_F_INTEXP 0x04 /* POWC exponent was given as an int (for _op)   */
#define MGF_F_USED 0x08   /* the node has been made a child of some node   */

/* Largest node count: child indices are int32. */
#define MGF_MAX_NODES ((int64_t)INT32_MAX)

typedef struct {
    double data;
    double grad;
    double param; /* POWC: the exponent */
    union {
        int32_t c[2]; /* up to two children, inline            */
        int64_t off;  /* more than two: offset into arena.edges */
    } k;
    uint32_t n; /* number of children (with repeats) */
    uint8_t op;
    uint8_t flags;
    uint16_t aux;
} mgf_node;

typedef struct {
    mgf_node *nodes;
    void **handles; /* borrowed pointer to each node's Python handle, or NULL */
    int64_t n, cap;
    int32_t *edges; /* children lists of nodes with n > 2, in node order */
    int64_t ne, ecap;
} mgf_arena;

/* Children of node o, as an array of o->n indices: inline, or in edges. */
#define MGF_KIDS(edges, o) ((o)->n <= 2 ? (o)->k.c : (edges) + (o)->k.off)

static inline int32_t *mgf_children(const mgf_arena *A, mgf_node *o) {
    return MGF_KIDS(A->edges, o);
}

/* Resize the node arrays to exactly cap slots; 0 on success, -1 if out of memory. */
static inline int mgf_resize_nodes(mgf_arena *A, int64_t cap) {
    if (cap < A->n || cap > MGF_MAX_NODES + 1) return -1;
    if (cap == 0) cap = 1;
    mgf_node *nodes = (mgf_node *)MGF_REALLOC(A->nodes, (size_t)cap * sizeof(mgf_node));
    if (!nodes) return -1;
    A->nodes = nodes;
    void **handles = (void **)MGF_REALLOC(A->handles, (size_t)cap * sizeof(void *));
    if (!handles) {
        /* nodes already has the new size: growing, cap stays (both arrays
         * still hold it); shrinking, cap must follow the smaller array */
        if (cap < A->cap) A->cap = cap;
        return -1;
    }
    A->handles = handles;
    A->cap = cap;
    return 0;
}

/* Make room for `more` further edges; 0 on success, -1 if out of memory. */
static inline int mgf_reserve_edges(mgf_arena *A, int64_t more) {
    if (A->ne + more <= A->ecap) return 0;
    int64_t cap = A->ecap ? A->ecap : 1024;
    while (cap < A->ne + more) cap *= 2;
    if ((uint64_t)cap > SIZE_MAX / sizeof(int32_t)) return -1;
    int32_t *e = (int32_t *)MGF_REALLOC(A->edges, (size_t)cap * sizeof(int32_t));
    if (!e) return -1;
    A->edges = e;
    A->ecap = cap;
    return 0;
}

static inline void mgf_release(mgf_arena *A) {
    MGF_FREE(A->nodes);
    MGF_FREE(A->handles);
    MGF_FREE(A->edges);
    memset(A, 0, sizeof(*A));
}

/* Append a node with no children; the caller has reserved room. */
static inline int64_t mgf_push(mgf_arena *A, uint8_t op, double data) {
    MGF_ASSERT(A->n < A->cap);
    int64_t i = A->n++;
    mgf_node *o = &A->nodes[i];
    o->data = data;
    o->grad = 0.0;
    o->param = 0.0;
    o->k.off = 0;
    o->n = 0;
    o->op = op;
    o->flags = 0;
    o->aux = 0;
    A->handles[i] = NULL;
    return i;
}

/* ---- invariants ------------------------------------------------------------
 * mgf_check verifies the arena's structural invariants in O(n + ne): sizes
 * within capacities, node 0 the sentinel leaf, known op codes, every child
 * index below its parent's index (creation order is a topological order),
 * out-of-line children lists inside the edge array and laid out in node
 * order (reclamation relies on that), pins only on nodes that have a
 * handle.  Returns MGF_CHECK_OK or the first failure's code, and stores the
 * offending node's index in *where (when where is not NULL).
 *
 * It is always compiled (it is static and costs nothing unused), so that
 * _engine._check_invariants() works in every build.  Builds that define
 * MGF_DEBUG also run it after every reclamation (MGF_CHECK_ARENA) and turn
 * MGF_ASSERT into a real assertion; without MGF_DEBUG both are empty. */
enum {
    MGF_CHECK_OK = 0,
    MGF_CHECK_SIZES = 1,    /* n > cap, ne > ecap, or a negative size       */
    MGF_CHECK_SENTINEL = 2, /* node 0 is not a childless leaf                */
    MGF_CHECK_OP = 3,       /* unknown op code or activation                 */
    MGF_CHECK_EDGES = 4,    /* children list outside the edge array, or out
                               of node order                                 */
    MGF_CHECK_CHILD = 5,    /* a child index not below its parent's index    */
    MGF_CHECK_PIN = 6       /* pinned or Python-rule node without a handle   */
};

static inline int mgf_check(const mgf_arena *A, int64_t *where) {
    int64_t i, next_off = 0, dummy;
    if (!where) where = &dummy;
    *where = -1;
    if (A->n < 0 || A->ne < 0 || A->n > A->cap || A->ne > A->ecap ||
        A->cap > MGF_MAX_NODES + 1)
        return MGF_CHECK_SIZES;
    if (A->n == 0) return MGF_CHECK_OK;
    *where = 0;
    if (A->nodes[0].op != MGF_LEAF || A->nodes[0].n != 0) return MGF_CHECK_SENTINEL;
    for (i = 1; i < A->n; i++) {
        const mgf_node *o = &A->nodes[i];
        const int32_t *ch;
        uint32_t t;
        *where = i;
        if (o->op > MGF_CUSTOM) return MGF_CHECK_OP;
        if (o->op == MGF_NEURON && (o->aux > MGF_ACT_SIGMOID || o->n % 2 != 1))
            return MGF_CHECK_OP;
        if (o->n > 2) {
            if (o->k.off < next_off || o->k.off > A->ne ||
                (int64_t)o->n > A->ne - o->k.off)
                return MGF_CHECK_EDGES;
            next_off = o->k.off + o->n;
            ch = A->edges + o->k.off;
        } else {
            ch = o->k.c;
        }
        for (t = 0; t < o->n; t++)
            if (ch[t] < 0 || ch[t] >= i) return MGF_CHECK_CHILD;
        if ((o->flags & (MGF_F_PINNED | MGF_F_PYBW)) && A->handles[i] == NULL)
            return MGF_CHECK_PIN;
    }
    *where = -1;
    return MGF_CHECK_OK;
}

#ifdef MGF_DEBUG
/* Abort with a message when the arena breaks an invariant. */
static inline void mgf_check_or_abort(const mgf_arena *A, const char *when) {
    int64_t where;
    int err = mgf_check(A, &where);
    if (err) {
        fprintf(stderr, "micrograd_fast: arena invariant %d broken at node %lld %s\n",
                err, (long long)where, when);
        abort();
    }
}
#define MGF_CHECK_ARENA(A, when) mgf_check_or_abort((A), (when))
#else
#define MGF_CHECK_ARENA(A, when) ((void)0)
#endif

/* ---- forward math, with Python's error semantics ------------------------ */

/* Error codes of the forward functions. */
enum {
    MGF_OK = 0,
    MGF_EZERODIV = 1, /* ZeroDivisionError: 0.0 to a negative power      */
    MGF_EOVERFLOW = 2,/* OverflowError                                    */
    MGF_EDOMAIN = 3   /* ValueError: outside the function's domain        */
};

static inline int mgf_is_odd_integer(double e) {
    return isfinite(e) && e == floor(e) && fmod(e, 2.0) != 0.0;
}

/* x ** e as Python's float power computes it (_pow_forward); a negative base
 * with a fractional exponent is MGF_EDOMAIN where Python would go complex. */
static inline int mgf_pow_forward(double x, double e, double *out) {
    if (e == 0.0) { *out = 1.0; return MGF_OK; }
    if (isnan(x)) { *out = x; return MGF_OK; }
    if (isnan(e)) { *out = x == 1.0 ? 1.0 : e; return MGF_OK; }
    if (isinf(e)) {
        double ax = fabs(x);
        if (ax == 1.0) *out = 1.0;
        else if ((e > 0.0) == (ax > 1.0)) *out = fabs(e);
        else *out = 0.0;
        return MGF_OK;
    }
    if (isinf(x)) {
        int odd = mgf_is_odd_integer(e);
        if (e > 0.0) *out = odd ? x : fabs(x);
        else *out = odd ? copysign(0.0, x) : 0.0;
        return MGF_OK;
    }
    if (x == 0.0) {
        if (e < 0.0) return MGF_EZERODIV;
        *out = mgf_is_odd_integer(e) ? x : 0.0;
        return MGF_OK;
    }
    int negate = 0;
    if (x < 0.0) {
        if (e != floor(e)) return MGF_EDOMAIN;
        x = -x;
        negate = mgf_is_odd_integer(e);
    }
    if (x == 1.0) { *out = negate ? -1.0 : 1.0; return MGF_OK; }
    /* The exponent goes through a volatile so that the compiler cannot see
     * a constant: gcc rewrites pow(x, -1.0) as 1.0 / x (even at -O0), which
     * rounds differently from libm's pow (and so from Python's x ** -1) for
     * some x, e.g. 0.9999999999999999. */
    volatile double e_opaque = e;
    double r = pow(x, e_opaque);
    if (isinf(r)) return MGF_EOVERFLOW;
    *out = negate ? -r : r;
    return MGF_OK;
}

/* math.exp: overflow of a finite argument is an error. */
static inline int mgf_exp_forward(double x, double *out) {
    double r = exp(x);
    if (isinf(r) && isfinite(x)) return MGF_EOVERFLOW;
    *out = r;
    return MGF_OK;
}

/* math.log, but nan passes through: x <= 0 is a domain error. */
static inline int mgf_log_forward(double x, double *out) {
    if (!(x > 0.0)) {
        if (isnan(x)) { *out = x; return MGF_OK; }
        return MGF_EDOMAIN;
    }
    *out = log(x);
    return MGF_OK;
}

/* _sigmoid: the two-branch form that never overflows. */
static inline double mgf_sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}

static inline double mgf_relu(double x) { return x < 0.0 ? 0.0 : x; }

static inline double mgf_activate(int act, double z) {
    switch (act) {
    case MGF_ACT_RELU: return mgf_relu(z);
    case MGF_ACT_TANH: return tanh(z);
    case MGF_ACT_SIGMOID: return mgf_sigmoid(z);
    default: return z;
    }
}

/* d act / d z times g, written as the pure engine writes it. */
MGF_INLINE double mgf_activate_grad(int act, double out, double g) {
    switch (act) {
    case MGF_ACT_RELU: return (double)(out > 0) * g;
    case MGF_ACT_TANH: return (1.0 - out * out) * g;
    case MGF_ACT_SIGMOID: return (out * (1.0 - out)) * g;
    default: return g;
    }
}

/* ---- local chain rules ---------------------------------------------------
 * Apply node o's rule once: add its contribution to each child's grad.
 * The expressions are the pure engine's, term for term, so both engines
 * round identically. */
MGF_INLINE void mgf_rule(mgf_node *nd, const int32_t *edges, const mgf_node *o) {
    const double g = o->grad;
    switch (o->op) {
    case MGF_ADD:
        nd[o->k.c[0]].grad += g;
        nd[o->k.c[1]].grad += g;
        break;
    case MGF_MUL: {
        mgf_node *x = &nd[o->k.c[0]], *y = &nd[o->k.c[1]];
        x->grad += y->data * g;
        y->grad += x->data * g;
        break;
    }
    case MGF_POWC: {
        mgf_node *x = &nd[o->k.c[0]];
        const double e = o->param;
        x->grad += (e * pow(x->data, e - 1.0)) * g;
        break;
    }
    case MGF_POWV: {
        mgf_node *x = &nd[o->k.c[0]], *y = &nd[o->k.c[1]];
        const double xd = x->data, e = y->data;
        double d;
        x->grad += (e * pow(xd, e - 1.0)) * g;
        if (xd > 0.0) d = o->data * log(xd);
        else if (xd == 0.0 && e >= 0.0) d = 0.0;
        else d = NAN;
        y->grad += d * g;
        break;
    }
    case MGF_RELU:
        nd[o->k.c[0]].grad += (double)(o->data > 0) * g;
        break;
    case MGF_TANH:
        nd[o->k.c[0]].grad += (1.0 - o->data * o->data) * g;
        break;
    case MGF_EXP:
        nd[o->k.c[0]].grad += o->data * g;
        break;
    case MGF_LOG: {
        mgf_node *x = &nd[o->k.c[0]];
        x->grad += (1.0 / x->data) * g;
        break;
    }
    case MGF_SIGMOID:
        nd[o->k.c[0]].grad += (o->data * (1.0 - o->data)) * g;
        break;
    case MGF_SUM: {
        const int32_t *ch = MGF_KIDS(edges, o);
        for (uint32_t j = 0; j < o->n; j++) nd[ch[j]].grad += g;
        break;
    }
    case MGF_NEURON: {
        /* children: w_0..w_{m-1}, x_0..x_{m-1}, b */
        const int32_t *ch = MGF_KIDS(edges, o);
        const uint32_t m = (o->n - 1) / 2;
        const double pre = mgf_activate_grad(o->aux, o->data, g);
        for (uint32_t j = 0; j < m; j++) {
            mgf_node *w = &nd[ch[j]], *x = &nd[ch[m + j]];
            w->grad += x->data * pre;
            x->grad += w->data * pre;
        }
        nd[ch[2 * m]].grad += pre;
        break;
    }
    default: /* MGF_LEAF, MGF_CUSTOM: nothing native to do */
        break;
    }
}

/* The same, for node i of an arena. */
static inline void mgf_local_backward(mgf_arena *A, int64_t i) {
    mgf_rule(A->nodes, A->edges, &A->nodes[i]);
}

/* Forward value of one neuron: act(((b + w0*x0) + w1*x1) + ...), the order
 * in which micrograd's Neuron sums. ch holds w..., x..., b as above. */
static inline double mgf_neuron_forward(const mgf_node *nd, const int32_t *ch, uint32_t m, int act) {
    double z = nd[ch[2 * m]].data;
    for (uint32_t j = 0; j < m; j++) z = z + nd[ch[j]].data * nd[ch[m + j]].data;
    return mgf_activate(act, z);
}

#endif /* MGF_CORE_H */
