/*
 * mgf_core.h - the node arena of micrograd_fast, in plain C99.
 *
 * This header holds what does not need Python: the node layout, the op
 * codes, growth of the arrays, and each op's forward value and local chain
 * rule.  The Cython core (micrograd_fast/_engine.pyx) owns the arena's life
 * cycle (handles, reclamation, the backward sweep) and calls in here.
 *
 * Local gradients (op MGF_LOCAL, the Value(data, children, local_grads)
 * form): a node made with explicit local derivatives keeps its children as
 * every node does (inline up to two, else in arena.edges) and its n local
 * derivatives, in child order, in a third array, arena.lg.  The node's
 * `param` holds the offset of its list in lg (an integer, exact in a
 * double).  Lists in lg are laid out in node order, like out-of-line
 * children, and reclamation slides them down together with their nodes.
 * Its backward is child_t.grad += lg_t * out.grad, for t = 0..n-1 in order.
 *
 * Memory comes from MGF_REALLOC / MGF_CALLOC / MGF_FREE, realloc / calloc
 * / free unless the build defines them (the extension maps them to Python's
 * raw allocator so that tracemalloc accounts for the arena).
 */
#ifndef MGF_CORE_H
#define MGF_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgf_block.h"

#ifndef MGF_REALLOC
#define MGF_REALLOC realloc
#endif
#ifndef MGF_FREE
#define MGF_FREE free
#endif
#ifndef MGF_CALLOC
#define MGF_CALLOC calloc
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

/* The op table: X(NAME, op_name) for every op code MGF_NAME, in code order.
 * op_name is the `_op` string its nodes show (MGF_POWC shows it followed by
 * the exponent, MGF_NEURON by the activation's name).  This list is the
 * only place the op codes and their names are written: it makes the enum
 * below and mgf_op_names[]; the Cython core reads the names from there.
 * The pure engine's rule is named after each (see docs/architecture.md). */
#define MGF_OPS(X)                                                          \
    X(LEAF, "")         /* Value(x): no children                          */ \
    X(ADD, "+")         /* Value.__add__                                  */ \
    X(MUL, "*")         /* Value.__mul__                                  */ \
    X(POWC, "**")       /* Value.__pow__ with a number (param = exponent) */ \
    X(POWV, "**")       /* Value._pow_value: Value ** Value               */ \
    X(RELU, "ReLU")     /* Value.relu                                     */ \
    X(TANH, "tanh")     /* Value.tanh                                     */ \
    X(EXP, "exp")       /* Value.exp                                      */ \
    X(LOG, "log")       /* Value.log                                      */ \
    X(SIGMOID, "sigmoid") /* Value.sigmoid                                */ \
    X(SUM, "sum")       /* vsum: n-ary sum                                */ \
    X(NEURON, "neuron_") /* layer: act(b + sum w_i x_i), aux = activation */ \
    X(CUSTOM, "")       /* Value(data, children, op): rule given in Python */ \
    X(LOCAL, "")        /* Value(data, children, local_grads): param =    */ \
                        /* offset of the local derivatives in arena.lg    */ \
    X(GELU, "gelu")     /* Value.gelu                                     */ \
    X(LAYER, "layer_")  /* a block: one layer over a batch (see below)    */

#define MGF_OP_CODE_(name, op_name) MGF_##name,
enum { MGF_OPS(MGF_OP_CODE_) MGF_NOPS /* the number of op codes */ };
#undef MGF_OP_CODE_

#define MGF_OP_NAME_(name, op_name) op_name,
static const char *const mgf_op_names[MGF_NOPS] = { MGF_OPS(MGF_OP_NAME_) };
#undef MGF_OP_NAME_
#define MGF_OP_CODE_NAME_(name, op_name) #name,
static const char *const mgf_op_codes[MGF_NOPS] = { MGF_OPS(MGF_OP_CODE_NAME_) };
#undef MGF_OP_CODE_NAME_

/* The activations of MGF_NEURON (node.aux): X(NAME, name, OP), the code
 * MGF_ACT_NAME, the name layers and nn take, and the op of the node an
 * unfused neuron applies it with (LEAF: none).  Its forward value and
 * derivative are mgf_activate and mgf_activate_grad below. */
#define MGF_ACTS(X)                     \
    X(LINEAR, "linear", MGF_LEAF)       \
    X(RELU, "relu", MGF_RELU)           \
    X(TANH, "tanh", MGF_TANH)           \
    X(SIGMOID, "sigmoid", MGF_SIGMOID)  \
    X(GELU, "gelu", MGF_GELU)

#define MGF_ACT_CODE_(name, act_name, op) MGF_ACT_##name,
enum { MGF_ACTS(MGF_ACT_CODE_) MGF_NACTS /* the number of activations */ };
#undef MGF_ACT_CODE_

#define MGF_ACT_NAME_(name, act_name, op) act_name,
static const char *const mgf_act_names[MGF_NACTS] = { MGF_ACTS(MGF_ACT_NAME_) };
#undef MGF_ACT_NAME_
#define MGF_ACT_OP_(name, act_name, op) op,
static const uint8_t mgf_act_ops[MGF_NACTS] = { MGF_ACTS(MGF_ACT_OP_) };
#undef MGF_ACT_OP_

/* Node flags. */
#define MGF_F_PYBW 0x01   /* backward calls the handle's Python _backward  */
#define MGF_F_PINNED 0x02 /* the arena holds a strong ref to the handle    */
#define MGF_F_INTEXP 0x04 /* POWC exponent was given as an int (for _op)   */
/* POWC with an int exponent k of size 2**53 or more: the derivative
 * k * x ** (k - 1) takes k - 1 from int arithmetic, rounded once, which is
 * not param - 1.0 but param itself (SAME) or the double below it (DOWN). */
#define MGF_F_EM1_SAME 0x40
#define MGF_F_EM1_DOWN 0x80
#define MGF_F_USED 0x08   /* the node has been made a child of some node   */
/* MGF_F_USED is cleared by a reclamation that finds no live parent (late
 * pins need no more); this one stays: the node has been a child once, so
 * __init__ again must keep it where it is (see mgf_rewire). */
#define MGF_F_WASUSED 0x20

/* Largest node count: child indices are int32. */
#define MGF_MAX_NODES ((int64_t)INT32_MAX)

typedef struct {
    double data;
    double grad;
    double param; /* POWC: the exponent; LOCAL: offset into arena.lg;
                   * NEURON: the pre-activation z = b + sum w_i x_i */
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
    void **handles; /* borrowed pointer to each node's Python handle, or NULL;
                     * NULL in every slot from n to cap, so that a new node
                     * has no handle without a store (reclamation clears
                     * the slots it vacates; growth copies the slots in
                     * use into a zeroed array: mgf_resize_nodes) */
    int64_t n, cap;
    int32_t *edges; /* children lists of nodes with n > 2, in node order */
    int64_t ne, ecap;
    double *lg; /* local derivatives of MGF_LOCAL nodes, in node order */
    int64_t nl, lcap;
} mgf_arena;

/* Children of node o, as an array of o->n indices: inline, or in edges. */
#define MGF_KIDS(edges, o) ((o)->n <= 2 ? (o)->k.c : (edges) + (o)->k.off)

static inline int32_t *mgf_children(const mgf_arena *A, mgf_node *o) {
    return MGF_KIDS(A->edges, o);
}

/* realloc of p to n elements of elem bytes; NULL if n is not positive, if
 * the size does not fit a size_t, or if out of memory (p is then unchanged). */
static inline void *mgf_realloc_n(void *p, int64_t n, size_t elem) {
    if (n < 1 || (uint64_t)n > SIZE_MAX / elem) return NULL;
    return MGF_REALLOC(p, (size_t)n * elem);
}

/* calloc of n elements of elem bytes; NULL as for mgf_realloc_n. */
static inline void *mgf_calloc_n(int64_t n, size_t elem) {
    if (n < 1 || (uint64_t)n > SIZE_MAX / elem) return NULL;
    return MGF_CALLOC((size_t)n, elem);
}

/* A capacity for at least `need` elements: cap (1024 if 0), doubled. */
static inline int64_t mgf_doubled(int64_t cap, int64_t need) {
    if (cap < 1) cap = 1024;
    while (cap < need) cap *= 2;
    return cap;
}

/* Resize the node arrays to exactly cap slots; 0 on success, -1 if out of memory. */
static inline int mgf_resize_nodes(mgf_arena *A, int64_t cap) {
    if (cap < A->n || cap > MGF_MAX_NODES + 1) return -1;
    if (cap == 0) cap = 1;
    mgf_node *nodes = (mgf_node *)mgf_realloc_n(A->nodes, cap, sizeof(mgf_node));
    if (!nodes) return -1;
    A->nodes = nodes;
    /* the slots from n up hold no handle (see mgf_arena): growing, a fresh
     * zeroed array takes the slots in use (calloc's fresh pages are not
     * touched until used, where zeroing the added slots would touch them
     * all, and shrinking the array later would have to give them back) */
    void **handles;
    if (cap > A->cap) {
        handles = (void **)mgf_calloc_n(cap, sizeof(void *));
        if (handles) {
            if (A->n > 0) memcpy(handles, A->handles, (size_t)A->n * sizeof(void *));
            MGF_FREE(A->handles);
        }
    } else {
        handles = (void **)mgf_realloc_n(A->handles, cap, sizeof(void *));
    }
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

/* Resize the edge array to exactly cap entries (at least ne, at least 1);
 * 0 on success, -1 if out of memory (the array is then unchanged). */
static inline int mgf_resize_edges(mgf_arena *A, int64_t cap) {
    if (cap < A->ne) return -1;
    if (cap < 1) cap = 1;
    int32_t *e = (int32_t *)mgf_realloc_n(A->edges, cap, sizeof(int32_t));
    if (!e) return -1;
    A->edges = e;
    A->ecap = cap;
    return 0;
}

/* Make room for `more` further edges; 0 on success, -1 if out of memory. */
static inline int mgf_reserve_edges(mgf_arena *A, int64_t more) {
    if (A->ne + more <= A->ecap) return 0;
    return mgf_resize_edges(A, mgf_doubled(A->ecap, A->ne + more));
}

/* Resize the local derivative array to exactly cap entries (at least nl,
 * at least 1); 0 on success, -1 if out of memory (the array is then
 * unchanged). */
static inline int mgf_resize_lg(mgf_arena *A, int64_t cap) {
    if (cap < A->nl) return -1;
    if (cap < 1) cap = 1;
    double *l = (double *)mgf_realloc_n(A->lg, cap, sizeof(double));
    if (!l) return -1;
    A->lg = l;
    A->lcap = cap;
    return 0;
}

/* Make room for `more` further local derivatives; 0 on success, -1 if out
 * of memory (the array is then unchanged). */
static inline int mgf_reserve_lg(mgf_arena *A, int64_t more) {
    if (A->nl + more <= A->lcap) return 0;
    return mgf_resize_lg(A, mgf_doubled(A->lcap, A->nl + more));
}

/* Offset of a MGF_LOCAL node's local derivatives in arena.lg. */
#define MGF_LG_OFF(o) ((int64_t)(o)->param)

/* ---- layer blocks (MGF_LAYER) ----------------------------------------------
 * A block is one layer applied to a batch of N input rows: nn's batch call
 * makes one per layer.  It is N * nout + 1 nodes, made together:
 *
 *   the head (aux has MGF_AUX_HEAD), never shown to Python: its children
 *     are the parameters, row by row (w_j0 .. w_j(nin-1), then b_j unless
 *     MGF_AUX_NOBIAS), then the inputs, row by row (x_n0 .. x_n(nin-1));
 *     its param is the offset of its list in arena.lg: N, nin, nout, then
 *     the N * nout output gradients d[n][j] (zero between passes);
 *   then the outputs, sample by sample, neuron by neuron: output (n, j) has
 *     one child, the head (k.c[0]), keeps its place n * nout + j in k.c[1],
 *     its pre-activation z in param and act(z) in data.
 *
 * aux & MGF_AUX_ACT is the activation, on the head and on every output.
 * Backward: the outputs come after the head, so the sweep visits every
 * reached output first; each stores d = act'(z) * its grad in the head's
 * list (mgf_rule).  The head comes last, after every node made after the
 * block: then it applies the whole block's rule at once, with the kernels
 * of mgf_block.h (mgf_layer_backward), in the orders written there, which
 * are the orders in which micrograd's neurons built row by row take each
 * sum.  Shown to Python, output (n, j) is a fused neuron: _prev is
 * (w_j0 .., x_n0 .., b_j) (mgf_layer_kids).  Reclamation keeps the head
 * while any output lives (it is their child) and moves its lists as it
 * moves every node's. */
#define MGF_AUX_ACT 0x00FF    /* the activation's code                      */
#define MGF_AUX_HEAD 0x0100   /* LAYER: the block's head                    */
#define MGF_AUX_NOBIAS 0x0200 /* LAYER head: no bias (micrograd_fast.linear) */
#define MGF_AUX_CHAIN 0x0400  /* LAYER head: its inputs were made as all the
                               * outputs of the block below (mgf_layer_chain) */
#define MGF_LAYER_HDR 3       /* N, nin, nout before the gradients in lg    */

MGF_INLINE int mgf_is_head(const mgf_node *o) {
    return o->op == MGF_LAYER && (o->aux & MGF_AUX_HEAD);
}

/* Whether node o has a list in arena.lg. */
MGF_INLINE int mgf_has_lg(const mgf_node *o) {
    return o->op == MGF_LOCAL || mgf_is_head(o);
}

/* The length of node o's list in arena.lg (0: it has none). */
static inline int64_t mgf_lg_len(const double *lg, const mgf_node *o) {
    if (o->op == MGF_LOCAL) return (int64_t)o->n;
    if (mgf_is_head(o)) {
        const double *h = lg + MGF_LG_OFF(o);
        return MGF_LAYER_HDR + (int64_t)h[0] * (int64_t)h[2];
    }
    return 0;
}

static inline void mgf_release(mgf_arena *A) {
    MGF_FREE(A->nodes);
    MGF_FREE(A->handles);
    MGF_FREE(A->edges);
    MGF_FREE(A->lg);
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
    MGF_ASSERT(A->handles[i] == NULL);
    return i;
}

/* Write node o (a slot of reserved room) with children c0 and c1 (n of
 * them, 0 to 2) and the given flags. */
MGF_INLINE void mgf_fill_flags(mgf_node *o, uint8_t op, uint8_t flags, double data, uint32_t n,
                               int32_t c0, int32_t c1) {
    o->data = data;
    o->grad = 0.0;
    o->param = 0.0;
    o->k.c[0] = c0;
    o->k.c[1] = c1;
    o->n = n;
    o->op = op;
    o->flags = flags;
    o->aux = 0;
}

/* The same, with no flags. */
MGF_INLINE void mgf_fill(mgf_node *o, uint8_t op, double data, uint32_t n,
                         int32_t c0, int32_t c1) {
    mgf_fill_flags(o, op, 0, data, n, c0, c1);
}

/* Append a node with up to two children; the caller has reserved room. */
MGF_INLINE int64_t mgf_push_node(mgf_arena *A, uint8_t op, double data, uint32_t n,
                                 int32_t c0, int32_t c1) {
    MGF_ASSERT(A->n < A->cap);
    int64_t i = A->n++;
    mgf_fill(&A->nodes[i], op, data, n, c0, c1);
    MGF_ASSERT(A->handles[i] == NULL);
    return i;
}

/* One neuron as micrograd's Neuron builds it, `sum((w_j * x_j for ...), b)`,
 * node for node in its creation order: acc = b; then for each input j a
 * leaf holding consts[-1 - x[j]] when x[j] < 0 (what `w * number` makes),
 * the MGF_MUL node (w[j], x_j) and the MGF_ADD node (acc, w_j * x_j).
 * Returns the last MGF_ADD node (b itself when m == 0) and stores its data
 * in *z.  The caller has reserved room: 2 * m nodes plus one per leaf. */
static inline int32_t mgf_chain_neuron(mgf_arena *A, const int32_t *w, const int32_t *x,
                                       const double *consts, int32_t b, uint32_t m,
                                       double *z) {
    /* local copies: the stores below cannot then be taken to change them */
    mgf_node *const nd = A->nodes;
    int64_t n = A->n;
    int32_t acc = b, xj;
    double accd = nd[b].data, xd, pd;
    MGF_ASSERT(n + 3 * (int64_t)m <= A->cap || n + 2 * (int64_t)m <= A->cap);
    /* each child is used by a parent (see MGF_F_USED): the nodes made
     * here are made with the flag, the last '+' loses it below (it has no
     * parent yet); new slots have no handle (see mgf_arena) */
    if (m) nd[b].flags |= MGF_F_USED;
    for (uint32_t j = 0; j < m; j++) {
        xj = x[j];
        if (xj < 0) {
            xd = consts[-1 - xj];
            MGF_ASSERT(n < A->cap && A->handles[n] == NULL);
            mgf_fill_flags(&nd[n], MGF_LEAF, MGF_F_USED, xd, 0, 0, 0);
            xj = (int32_t)n++;
        } else {
            xd = nd[xj].data;
            nd[xj].flags |= MGF_F_USED;
        }
        pd = nd[w[j]].data * xd;
        accd = accd + pd;
        MGF_ASSERT(n + 1 < A->cap && A->handles[n] == NULL && A->handles[n + 1] == NULL);
        mgf_fill_flags(&nd[n], MGF_MUL, MGF_F_USED, pd, 2, w[j], xj);
        mgf_fill_flags(&nd[n + 1], MGF_ADD, MGF_F_USED, accd, 2, acc, (int32_t)n);
        nd[w[j]].flags |= MGF_F_USED;
        acc = (int32_t)(n + 1);
        n += 2;
    }
    if (m) nd[acc].flags &= (uint8_t)~MGF_F_USED;
    A->n = n;
    *z = accd;
    return acc;
}

/* 1 if idx[t] is still the node of handle h[t] for every t < n: each
 * index lies inside the arena and the arena's slot there holds that
 * handle (a node's handle and a handle's idx change together, so this is
 * the same as reading each handle's idx, without touching the handles).
 * The handles are opaque here: only their addresses are compared.
 * mgf_assert_indices_current is that check in builds with MGF_DEBUG, and
 * nothing otherwise. */
static inline int mgf_indices_current(const mgf_arena *A, const int32_t *idx,
                                      void *const *h, int64_t n) {
    void *const *hd = A->handles;
    const int64_t an = A->n;
    for (int64_t t = 0; t < n; t++) {
        const int32_t i = idx[t];
        if (i <= 0 || i >= an || hd[i] != h[t]) return 0;
    }
    return 1;
}
static inline void mgf_assert_indices_current(const mgf_arena *A, const int32_t *idx,
                                              void *const *h, int64_t n) {
    MGF_ASSERT(mgf_indices_current(A, idx, h, n));
    (void)A; (void)idx; (void)h; (void)n;
}

/* ---- __init__ again: a node rewired in place ---------------------------------
 * Calling __init__ again on a Value changes its node where it stands, as
 * upstream's __init__ changes the object every parent holds: node i gets
 * the op, data and children given (grad 0), keeping its index, its pin
 * and its use flags.  The children must all come before i (the caller
 * checks).  Out-of-line lists stay in node order: the node's new edge
 * list (more than two children) and local derivatives (MGF_LOCAL) take
 * the place of its old ones, and the lists of later nodes shift by the
 * difference, O(nodes after i) when the sizes differ.  The caller has
 * reserved n more edges and n more local derivatives. */
static inline int64_t mgf_splice_(int64_t *lo, int64_t old_m, int64_t new_m, int64_t used,
                                  void *arr, size_t elem) {
    /* make [*lo, *lo + old_m) of arr (used entries) into [*lo, *lo + new_m) */
    char *a = (char *)arr;
    if (old_m != new_m && used > *lo + old_m)
        memmove(a + (size_t)(*lo + new_m) * elem, a + (size_t)(*lo + old_m) * elem,
                (size_t)(used - *lo - old_m) * elem);
    return new_m - old_m;
}
static inline void mgf_rewire(mgf_arena *A, int64_t i, uint8_t op, double data, uint32_t n,
                              const int32_t *kids, const double *lgs) {
    mgf_node *o = &A->nodes[i];
    int64_t j, eo = -1, lo = -1, de, dl;
    int64_t old_e = o->n > 2 ? (int64_t)o->n : 0, new_e = n > 2 ? (int64_t)n : 0;
    int64_t old_l = mgf_lg_len(A->lg, o);
    int64_t new_l = op == MGF_LOCAL ? (int64_t)n : 0;
    uint32_t t;
    /* where the node's lists go: where its old ones are, or before the
     * first later node's */
    if (old_e) eo = o->k.off;
    if (old_l) lo = MGF_LG_OFF(o);
    for (j = i + 1; j < A->n && ((new_e && eo < 0) || (new_l && lo < 0)); j++) {
        const mgf_node *q = &A->nodes[j];
        if (eo < 0 && q->n > 2) eo = q->k.off;
        if (lo < 0 && mgf_has_lg(q)) lo = MGF_LG_OFF(q);
    }
    if (eo < 0) eo = A->ne;
    if (lo < 0) lo = A->nl;
    de = mgf_splice_(&eo, old_e, new_e, A->ne, A->edges, sizeof(int32_t));
    dl = mgf_splice_(&lo, old_l, new_l, A->nl, A->lg, sizeof(double));
    A->ne += de;
    A->nl += dl;
    if (de || dl) {
        for (j = i + 1; j < A->n; j++) {
            mgf_node *q = &A->nodes[j];
            if (de && q->n > 2) q->k.off += de;
            if (dl && mgf_has_lg(q)) q->param += (double)dl;
        }
    }
    o->op = op;
    o->data = data;
    o->grad = 0.0;
    o->param = new_l ? (double)lo : 0.0;
    o->aux = 0;
    o->flags &= (uint8_t)(MGF_F_PINNED | MGF_F_USED | MGF_F_WASUSED);
    o->n = n;
    if (new_e) {
        o->k.off = eo;
        memcpy(A->edges + eo, kids, (size_t)n * sizeof(int32_t));
    } else {
        o->k.c[0] = n > 0 ? kids[0] : 0;
        o->k.c[1] = n > 1 ? kids[1] : 0;
    }
    if (new_l) memcpy(A->lg + lo, lgs, (size_t)n * sizeof(double));
    for (t = 0; t < n; t++) A->nodes[kids[t]].flags |= MGF_F_USED;
}

/* ---- late pins handed over ---------------------------------------------------
 * A late pin (MGF_F_PINNED) is a reference the arena holds and the cyclic
 * GC cannot see.  After a reclamation, a pin on a node that a live parent
 * uses (MGF_F_USED) is handed over to the handles that reach the node:
 * going up the arena (children before parents), each node passes up the
 * handles below it that still need a holder; the first node on the way
 * that has a handle takes them (they go into that handle's _keep, where
 * tp_traverse sees them).  A handle that takes some, or whose own pin
 * moves, and whose node a live parent uses, needs a holder in turn and is
 * passed further up, so after the hand-over no used node keeps a pin and
 * every live handle above a late-stated node reaches it through _keep
 * tuples, as Python objects hold each other in the pure engine.
 *
 * The sets passed up are nodes of a small DAG (a leaf: one handle; a
 * union: two sets), so a node with many children costs one union per
 * distinct set; a holder walks its set once, each leaf visited once.
 * mgf_hand_over_pins fills `H` with (holder, taken) pairs, grouped by
 * holder, and the node indices whose pin moves; it changes nothing in the
 * arena (the caller clears the flags once the pairs are in hand).
 * Returns 0, or -1 out of memory (H then holds nothing). */
typedef struct {
    void **holder, **taken; /* pair t: holder[t]'s _keep takes taken[t] */
    int64_t n, hcap, tcap;
    int32_t *moved;         /* nodes whose pin moves to the holders above */
    int64_t nmoved, mcap;
} mgf_handover;

static inline void mgf_handover_free(mgf_handover *H) {
    MGF_FREE(H->holder);
    MGF_FREE(H->taken);
    MGF_FREE(H->moved);
    memset(H, 0, sizeof(*H));
}

/* grow *p (elem bytes each, *cap of them) to hold at least need */
static inline int mgf_grow_to(void **p, int64_t *cap, int64_t need, size_t elem) {
    void *q;
    int64_t c;
    if (need <= *cap) return 0;
    c = mgf_doubled(*cap < 16 ? 16 : *cap, need);
    q = mgf_realloc_n(*p, c, elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static inline int mgf_hand_over_pins(const mgf_arena *A, mgf_handover *H) {
    int64_t n = A->n, i, ns = 0, scap = 0, sp = 0, stcap = 0;
    int32_t *pend = (int32_t *)mgf_realloc_n(NULL, n > 0 ? n : 1, sizeof(int32_t));
    void **sh = NULL;                /* set k: a leaf (its handle) ...       */
    int32_t *sa = NULL, *sb = NULL;  /* ... or the union of sets sa[k], sb[k] */
    int32_t *stamp = NULL, *st = NULL, holders = 0;
    int64_t c1 = 0, c2 = 0, c3 = 0, c4 = 0; /* the capacities of sh, sa, sb, stamp */
    memset(H, 0, sizeof(*H));
    if (!pend) return -1;
#define MGF_NEW_SET(h_, a_, b_)                                                   \
    do {                                                                          \
        if (ns + 1 > scap) {                                                      \
            if (mgf_grow_to((void **)&sh, &c1, ns + 1, sizeof(void *)) < 0 ||     \
                mgf_grow_to((void **)&sa, &c2, ns + 1, sizeof(int32_t)) < 0 ||    \
                mgf_grow_to((void **)&sb, &c3, ns + 1, sizeof(int32_t)) < 0 ||    \
                mgf_grow_to((void **)&stamp, &c4, ns + 1, sizeof(int32_t)) < 0)   \
                goto nomem;                                                       \
            scap = c1 < c2 ? c1 : c2;                                             \
            if (c3 < scap) scap = c3;                                             \
            if (c4 < scap) scap = c4;                                             \
        }                                                                         \
        sh[ns] = (h_); sa[ns] = (a_); sb[ns] = (b_); stamp[ns] = 0;               \
        ns++;                                                                     \
    } while (0)
    if (n > 0) pend[0] = -1;
    for (i = 1; i < n; i++) {
        mgf_node *o = &A->nodes[i];
        const int32_t *ch = MGF_KIDS(A->edges, o);
        void *h = A->handles[i];
        int32_t cur = -1, s;
        uint32_t t;
        for (t = 0; t < o->n; t++) {
            s = pend[ch[t]];
            if (s < 0 || s == cur) continue;
            if (cur < 0) {
                cur = s;
            } else {
                MGF_NEW_SET(NULL, cur, s);
                cur = (int32_t)(ns - 1);
            }
        }
        pend[i] = -1;
        if (h == NULL) {
            pend[i] = cur;  /* no handle here: passed on up */
            continue;
        }
        if (cur >= 0) {     /* h takes every handle of set cur, once each */
            holders++;
            sp = 0;
            if (mgf_grow_to((void **)&st, &stcap, 1, sizeof(int32_t)) < 0) goto nomem;
            st[sp++] = cur;
            while (sp > 0) {
                int32_t k = st[--sp];
                if (stamp[k] == holders) continue;
                stamp[k] = holders;
                if (sh[k] != NULL) {
                    if (mgf_grow_to((void **)&H->holder, &H->hcap, H->n + 1,
                                    sizeof(void *)) < 0 ||
                        mgf_grow_to((void **)&H->taken, &H->tcap, H->n + 1,
                                    sizeof(void *)) < 0)
                        goto nomem;
                    H->holder[H->n] = h;
                    H->taken[H->n] = sh[k];
                    H->n++;
                } else {
                    if (mgf_grow_to((void **)&st, &stcap, sp + 2, sizeof(int32_t)) < 0)
                        goto nomem;
                    st[sp++] = sa[k];
                    st[sp++] = sb[k];
                }
            }
        }
        if ((o->flags & MGF_F_USED) && (cur >= 0 || (o->flags & MGF_F_PINNED))) {
            if (o->flags & MGF_F_PINNED) {
                if (mgf_grow_to((void **)&H->moved, &H->mcap, H->nmoved + 1,
                                sizeof(int32_t)) < 0)
                    goto nomem;
                H->moved[H->nmoved++] = (int32_t)i;
            }
            MGF_NEW_SET(h, -1, -1);
            pend[i] = (int32_t)(ns - 1);
        }
    }
#undef MGF_NEW_SET
    MGF_FREE(pend);
    MGF_FREE(sh);
    MGF_FREE(sa);
    MGF_FREE(sb);
    MGF_FREE(stamp);
    MGF_FREE(st);
    return 0;
nomem:
    MGF_FREE(pend);
    MGF_FREE(sh);
    MGF_FREE(sa);
    MGF_FREE(sb);
    MGF_FREE(stamp);
    MGF_FREE(st);
    mgf_handover_free(H);
    return -1;
}

/* ---- invariants ------------------------------------------------------------
 * mgf_check verifies the arena's structural invariants in O(cap + ne): sizes
 * within capacities, node 0 the sentinel leaf, known op codes, every child
 * index below its parent's index (creation order is a topological order),
 * out-of-line children lists inside the edge array and laid out in node
 * order (reclamation relies on that), local-derivative lists inside the
 * lg array and in node order too, pins only on nodes that have a
 * handle, no handle in the slots from n to cap.  Returns MGF_CHECK_OK or
 * the first failure's code, and stores the offending node's index in
 * *where (when where is not NULL).
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
    MGF_CHECK_PIN = 6,      /* pinned or Python-rule node without a handle   */
    MGF_CHECK_LGRADS = 7,   /* local derivatives outside the lg array, or out
                               of node order                                 */
    MGF_CHECK_SLOTS = 8     /* a handle in a slot at or above n              */
};

static inline int mgf_check(const mgf_arena *A, int64_t *where) {
    int64_t i, next_off = 0, next_loff = 0, dummy;
    if (!where) where = &dummy;
    *where = -1;
    if (A->n < 0 || A->ne < 0 || A->n > A->cap || A->ne > A->ecap ||
        A->nl < 0 || A->nl > A->lcap ||
        A->cap > MGF_MAX_NODES + 1)
        return MGF_CHECK_SIZES;
    for (i = A->n; i < A->cap; i++) {
        if (A->handles[i] != NULL) {
            *where = i;
            return MGF_CHECK_SLOTS;
        }
    }
    if (A->n == 0) return MGF_CHECK_OK;
    *where = 0;
    if (A->nodes[0].op != MGF_LEAF || A->nodes[0].n != 0) return MGF_CHECK_SENTINEL;
    for (i = 1; i < A->n; i++) {
        const mgf_node *o = &A->nodes[i];
        const int32_t *ch;
        uint32_t t;
        *where = i;
        if (o->op >= MGF_NOPS) return MGF_CHECK_OP;
        if (mgf_has_lg(o)) {
            int64_t lo, len;
            if ((o->op == MGF_LOCAL && o->n == 0) || !(o->param >= 0.0) ||
                o->param != floor(o->param))
                return MGF_CHECK_LGRADS;
            lo = MGF_LG_OFF(o);
            if (lo < next_loff || lo > A->nl || A->nl - lo < (o->op == MGF_LOCAL ? 1 : MGF_LAYER_HDR))
                return MGF_CHECK_LGRADS;
            len = mgf_lg_len(A->lg, o);
            if (len < 1 || len > A->nl - lo) return MGF_CHECK_LGRADS;
            next_loff = lo + len;
        }
        if (o->op == MGF_NEURON && (o->aux >= MGF_NACTS || o->n % 2 != 1))
            return MGF_CHECK_OP;
        if (o->op == MGF_LAYER && ((o->aux & MGF_AUX_ACT) >= MGF_NACTS ||
                                   (!(o->aux & MGF_AUX_HEAD) &&
                                    (o->n != 1 || !mgf_is_head(&A->nodes[o->k.c[0]])))))
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
#define MGF_CHECK_ARENA(A, when) ((void)(A), (void)(when))
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

/* x * -1.0 as Python computes v * -1 (upstream's -v): a multiplication,
 * which keeps a nan's sign bit on the processors CPython runs on, where a
 * compiler would rewrite x * -1.0 as -x, which flips it.  The factor goes
 * through a volatile so that the compiler cannot see the constant. */
static inline double mgf_times_minus_one(double x) {
    volatile double minus_one = -1.0;
    return x * minus_one;
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

/* _tanh: the lecture's formula, t = (exp(2x) - 1) / (exp(2x) + 1), with the
 * same operations in the same order as the pure engine, wherever exp(2x)
 * is finite; where it overflows (x > ~354.9, or +inf) the formula would
 * give nan, and the stable tanh() gives the true value, 1.0.  Very
 * negative x needs nothing special: exp(2x) is 0 and the formula -1.0. */
static inline double mgf_tanh(double x) {
    double e = exp(2.0 * x);
    if (isinf(e) && e > 0.0) return tanh(x);
    return (e - 1.0) / (e + 1.0);
}

/* The lecture's tanh derivative factor 1 - t**2: t**2 is Python's float
 * power, libm's pow(t, 2.0); the exponent goes through a volatile so that
 * the compiler cannot turn it into t * t (see mgf_pow_forward). */
static inline double mgf_tanh_slope(double t) {
    volatile double two = 2.0;
    return 1.0 - pow(t, two);
}

/* GELU, the exact (erf) form, with torch.nn.GELU()'s expressions:
 * x * 0.5 * (1 + erf(x / sqrt 2)), and its derivative cdf + x * pdf with
 * cdf = 0.5 * (1 + erf(x / sqrt 2)), pdf = exp(-x*x / 2) / sqrt(2 pi).
 * The two constants are the doubles nearest 1/sqrt(2) and 1/sqrt(2 pi)
 * (the pure engine writes the same literals). */
#define MGF_SQRT1_2 0.7071067811865476
#define MGF_INV_SQRT_2PI 0.3989422804014327

static inline double mgf_gelu(double x) {
    return x * 0.5 * (1.0 + erf(x * MGF_SQRT1_2));
}

static inline double mgf_gelu_slope(double x) {
    const double cdf = 0.5 * (1.0 + erf(x * MGF_SQRT1_2));
    const double pdf = MGF_INV_SQRT_2PI * exp(x * x * -0.5);
    return cdf + x * pdf;
}

static inline double mgf_activate(int act, double z) {
    switch (act) {
    case MGF_ACT_RELU: return mgf_relu(z);
    case MGF_ACT_TANH: return mgf_tanh(z);
    case MGF_ACT_SIGMOID: return mgf_sigmoid(z);
    case MGF_ACT_GELU: return mgf_gelu(z);
    default: return z;
    }
}

/* d act / d z times g, written as the pure engine writes it, from the
 * pre-activation z (a fused neuron's param) or from the activation's value
 * out (its data), whichever the derivative is a function of: the unfused
 * neuron's op reads the same one (its child's data, or its own). */
MGF_INLINE double mgf_activate_grad(int act, double z, double out, double g) {
    switch (act) {
    case MGF_ACT_RELU: return (double)(out > 0) * g;
    case MGF_ACT_TANH: return mgf_tanh_slope(out) * g;
    case MGF_ACT_SIGMOID: return (out * (1.0 - out)) * g;
    case MGF_ACT_GELU: return mgf_gelu_slope(z) * g;
    default: return g;
    }
}

/* The exponent of a MGF_POWC node's derivative, param - 1 as the exponent's
 * own arithmetic gives it (see MGF_F_EM1_SAME / MGF_F_EM1_DOWN). */
static inline double mgf_powc_em1(const mgf_node *o) {
    const double e = o->param;
    if (o->flags & MGF_F_EM1_SAME) return e;
    if (o->flags & MGF_F_EM1_DOWN) return nextafter(e, -INFINITY);
    return e - 1.0;
}

/* ---- layer blocks: the nodes (see "layer blocks" above) ------------------ */

/* The head's list in lg: N, nin, nout and the output gradients. */
typedef struct {
    int64_t N, nin, nout, P; /* P: parameters per neuron (nin + 1, or nin) */
    double *d;               /* d[n * nout + j] */
    const int32_t *par;      /* parameters, row by row (P per neuron) */
    const int32_t *in;       /* inputs, row by row (nin per sample) */
} mgf_layer_view;

MGF_INLINE mgf_layer_view mgf_layer_of(const mgf_node *nd, const int32_t *edges,
                                       const double *lg, const mgf_node *o) {
    mgf_layer_view v;
    const mgf_node *h = mgf_is_head(o) ? o : &nd[o->k.c[0]];
    const double *l = lg + MGF_LG_OFF(h);
    const int32_t *ch = MGF_KIDS(edges, h);
    v.N = (int64_t)l[0];
    v.nin = (int64_t)l[1];
    v.nout = (int64_t)l[2];
    v.P = v.nin + !(h->aux & MGF_AUX_NOBIAS);
    v.d = (double *)(l + MGF_LAYER_HDR);
    v.par = ch;
    v.in = ch + v.nout * v.P;
    return v;
}

/* The children an output shows (its _prev, in order): w_j0 .. w_j(nin-1),
 * x_n0 .. x_n(nin-1), then b_j when the block has biases, as a fused
 * neuron's; into out (NULL: only counted).  Returns the count; a head
 * shows none. */
static inline int64_t mgf_layer_kids(const mgf_arena *A, const mgf_node *o, int32_t *out) {
    if (mgf_is_head(o)) return 0;
    mgf_layer_view v = mgf_layer_of(A->nodes, A->edges, A->lg, o);
    const int64_t pos = o->k.c[1], n = pos / v.nout, j = pos % v.nout;
    const int64_t count = 2 * v.nin + (v.P - v.nin);
    if (out) {
        memcpy(out, v.par + j * v.P, (size_t)v.nin * sizeof(int32_t));
        memcpy(out + v.nin, v.in + n * v.nin, (size_t)v.nin * sizeof(int32_t));
        if (v.P > v.nin) out[2 * v.nin] = v.par[j * v.P + v.nin];
    }
    return count;
}

/* Output o's rule on its own (its _backward() called by hand): what a
 * fused neuron's rule does, w_i += x_i * pre, x_i += w_i * pre, b += pre. */
static inline void mgf_layer_output_rule(mgf_node *nd, const int32_t *edges, const double *lg,
                                         const mgf_node *o) {
    mgf_layer_view v = mgf_layer_of(nd, edges, lg, o);
    const int64_t pos = o->k.c[1], n = pos / v.nout, j = pos % v.nout;
    const int32_t *w = v.par + j * v.P, *x = v.in + n * v.nin;
    const double pre = mgf_activate_grad(o->aux & MGF_AUX_ACT, o->param, o->data, o->grad);
    for (int64_t i = 0; i < v.nin; i++) {
        mgf_node *wi = &nd[w[i]], *xi = &nd[x[i]];
        wi->grad += xi->data * pre;
        xi->grad += wi->data * pre;
    }
    if (v.P > v.nin) nd[w[v.nin]].grad += pre;
}

/* The head's rule: the block's backward pass, every sum in the order of
 * mgf_block.h, starting from each node's grad as it is.  The parameters'
 * and inputs' numbers are read now, as micrograd's rules read them.  The
 * output gradients are zeroed after, for the next pass.  Without memory
 * for the dense copies, the same sums run in place on the nodes. */
/* The rule of the outputs of the block whose head is h1 (the inputs in[k]
 * of a chained head, output k of that block), once their grads are
 * complete: d[k] = act'(z_k) * grad_k into h1's list, what each output's
 * own rule stores (see mgf_rule). */
static inline void mgf_layer_chain_down(const mgf_node *nd, const double *lg, int64_t h1,
                                        const int32_t *in, int64_t n) {
    const mgf_node *h = &nd[h1];
    double *d = (double *)lg + MGF_LG_OFF(h) + MGF_LAYER_HDR;
    const int act = h->aux & MGF_AUX_ACT;
    for (int64_t k = 0; k < n; k++) {
        const mgf_node *x = &nd[in[k]];
        d[k] = mgf_activate_grad(act, x->param, x->data, x->grad);
    }
}

/* Whether head o's inputs are, in order, all the outputs of the block
 * just below it, each still that block's output as made (no Python rule
 * given since, no __init__ again): the hidden layers of one batch call.
 * Returns that block's head, or -1. */
static inline int64_t mgf_layer_chain(const mgf_node *nd, const int32_t *edges,
                                      const double *lg, const mgf_node *o) {
    mgf_layer_view v;
    const mgf_node *h1;
    int64_t k, first, n1;
    if (!(o->aux & MGF_AUX_CHAIN)) return -1;
    v = mgf_layer_of(nd, edges, lg, o);
    if (v.N * v.nin == 0) return -1;
    first = v.in[0];
    h1 = &nd[first - 1];
    if (!mgf_is_head(h1)) return -1;
    {
        const double *l1 = lg + MGF_LG_OFF(h1);
        n1 = (int64_t)l1[0] * (int64_t)l1[2];
    }
    if (n1 != v.N * v.nin) return -1;
    for (k = 0; k < n1; k++) {
        const mgf_node *x = &nd[first + k];
        if (v.in[k] != first + k || x->op != MGF_LAYER || (x->aux & MGF_AUX_HEAD) ||
            x->k.c[0] != first - 1 || x->k.c[1] != k || (x->flags & MGF_F_PYBW))
            return -1;
    }
    return first - 1;
}

static void mgf_layer_backward(mgf_node *nd, const int32_t *edges, const double *lg,
                               const mgf_node *o, int64_t chained, uint8_t *seen,
                               int64_t *skipped);

/* A head's step in the backward sweep.  A chained head (mgf_layer_chain)
 * marks the head below it, not that block's outputs:
 * it applies their rules itself, storing each one's d = act'(z) * grad in
 * the lower head's list once its grad is complete, as each output's own
 * rule would (an output that something else marked is visited as well,
 * and stores the same d again).  Any other head marks its inputs.  The
 * parameters (and inputs) are marked by mgf_layer_backward as it reads
 * them, except leaves with no Python rule: visiting one does nothing.
 * Returns the children not marked (the caller counts them as visited). */
static inline int64_t mgf_layer_sweep(mgf_node *nd, const int32_t *edges, const double *lg,
                                      const mgf_node *o, uint8_t *seen) {
    const int64_t h1 = mgf_layer_chain(nd, edges, lg, o);
    int64_t skipped = 0;
    if (h1 >= 0) {
        mgf_layer_view v = mgf_layer_of(nd, edges, lg, o);
        seen[h1] = 1;
        skipped = v.N * v.nin;
    }
    mgf_layer_backward(nd, edges, lg, o, h1, seen, &skipped);
    return skipped;
}

/* Marks child c in seen (when seen is given) unless it is a leaf with no
 * Python rule, counted in *skipped instead. */
MGF_INLINE void mgf_layer_mark(const mgf_node *nd, int32_t c, uint8_t *seen,
                               int64_t *skipped) {
    if (!seen) return;
    if (nd[c].op == MGF_LEAF && !(nd[c].flags & MGF_F_PYBW))
        (*skipped)++;
    else
        seen[c] = 1;
}

static void mgf_layer_backward(mgf_node *nd, const int32_t *edges, const double *lg,
                               const mgf_node *o, int64_t chained, uint8_t *seen,
                               int64_t *skipped) {
    mgf_layer_view v = mgf_layer_of(nd, edges, lg, o);
    const int64_t N = v.N, nin = v.nin, nout = v.nout, P = v.P;
    const int64_t nw = nout * nin, nx = N * nin;
    int64_t n, j, i;
    double *buf = (double *)mgf_realloc_n(NULL, 2 * nw + nout + 2 * nx + 1, sizeof(double));
    if (seen) {  /* the marks first (the fallback below reads no copies) */
        if (!buf)
            for (i = 0; i < nout * P; i++) mgf_layer_mark(nd, v.par[i], seen, skipped);
        if (chained < 0)
            for (i = 0; i < nx; i++) mgf_layer_mark(nd, v.in[i], seen, skipped);
    }
    if (buf) {
        double *W = buf, *Wg = W + nw, *Bg = Wg + nw, *X = Bg + nout, *Xg = X + nx;
        for (j = 0; j < nout; j++) {
            const int32_t *row = v.par + j * P;
            for (i = 0; i < nin; i++) {
                W[j * nin + i] = nd[row[i]].data;
                Wg[j * nin + i] = nd[row[i]].grad;
                mgf_layer_mark(nd, row[i], seen, skipped);
            }
            if (P > nin) {
                Bg[j] = nd[row[nin]].grad;
                mgf_layer_mark(nd, row[nin], seen, skipped);
            } else {
                Bg[j] = 0.0;
            }
        }
        for (i = 0; i < nx; i++) {
            X[i] = nd[v.in[i]].data;
            Xg[i] = nd[v.in[i]].grad;
        }
        /* Wg[j][i] += x[n][i] * d[n][j], n descending; A(j, n) = d[n][j] */
        mgf_block_gemm(Wg, nin, v.d, 1, nout, X, nin, nout, nin, N, 1);
        if (P > nin) mgf_block_bias_grad(Bg, v.d, N, nout);
        /* Xg[n][i] += W[j][i] * d[n][j], j descending; A(n, j) = d[n][j] */
        mgf_block_gemm(Xg, nin, v.d, nout, 1, W, nin, N, nin, nout, 1);
        for (j = 0; j < nout; j++) {
            const int32_t *row = v.par + j * P;
            for (i = 0; i < nin; i++) nd[row[i]].grad = Wg[j * nin + i];
            if (P > nin) nd[row[nin]].grad = Bg[j];
        }
        if (chained >= 0) {
            /* the grads stored and the lower block's outputs' rules
             * applied in one pass over those nodes */
            const mgf_node *h1 = &nd[chained];
            double *d1 = (double *)lg + MGF_LG_OFF(h1) + MGF_LAYER_HDR;
            const int act1 = h1->aux & MGF_AUX_ACT;
            for (i = 0; i < nx; i++) {
                mgf_node *x = &nd[v.in[i]];
                x->grad = Xg[i];
                d1[i] = mgf_activate_grad(act1, x->param, x->data, Xg[i]);
            }
            chained = -1;  /* done */
        } else {
            for (i = 0; i < nx; i++) nd[v.in[i]].grad = Xg[i];
        }
        MGF_FREE(buf);
    } else {
        for (j = 0; j < nout; j++) {
            const int32_t *row = v.par + j * P;
            for (n = N - 1; n >= 0; n--) {
                const double dn = v.d[n * nout + j];
                for (i = 0; i < nin; i++)
                    nd[row[i]].grad += nd[v.in[n * nin + i]].data * dn;
                if (P > nin) nd[row[nin]].grad += dn;
            }
        }
        for (n = 0; n < N; n++)
            for (j = nout - 1; j >= 0; j--) {
                const double dn = v.d[n * nout + j];
                const int32_t *row = v.par + j * P;
                for (i = 0; i < nin; i++) nd[v.in[n * nin + i]].grad += nd[row[i]].data * dn;
            }
    }
    if (chained >= 0) mgf_layer_chain_down(nd, lg, chained, v.in, nx);
    memset(v.d, 0, (size_t)(N * nout) * sizeof(double));
}

/* A block's forward sums: ZT[j][n] = b_j + W[j][0]*x[n][0] + W[j][1]*x[n][1]
 * + ..., inputs ascending, held transposed (rows: neurons; lanes across
 * samples), from W (nout x nin, gathered row by row: the parameters' nodes
 * are read in order) and XT (nin x N: the inputs transposed, gathered here
 * unless x_given).  The rows of XT and ZT are ldn >= N long, ldn a multiple
 * of the widest vector (MGF_LDN): columns N..ldn-1 are padding, computed
 * and never read (zeros in XT when gathered here). */
#define MGF_LDN(N) (((N) + 7) / 8 * 8)
static inline void mgf_layer_forward_in(mgf_node *nd, const int32_t *par,
                                        const int32_t *in, int64_t N, int64_t nin,
                                        int64_t nout, int bias, double *W, double *XT,
                                        double *ZT, int x_given, uint8_t used) {
    const int64_t P = nin + (bias ? 1 : 0), ldn = MGF_LDN(N);
    int64_t n, j, i;
    /* (used: the flag the children get, MGF_F_USED when building; their
     * lines are read here anyway) */
    for (j = 0; j < nout; j++) {
        const int32_t *row = par + j * P;
        const double b = bias ? nd[row[nin]].data : 0.0;
        for (i = 0; i < nin; i++) {
            W[j * nin + i] = nd[row[i]].data;
            nd[row[i]].flags |= used;
        }
        if (bias) nd[row[nin]].flags |= used;
        for (n = 0; n < ldn; n++) ZT[j * ldn + n] = b;
    }
    if (!x_given)
        for (i = 0; i < nin; i++) {
            for (n = 0; n < N; n++) {
                XT[i * ldn + n] = nd[in[n * nin + i]].data;
                nd[in[n * nin + i]].flags |= used;
            }
            for (; n < ldn; n++) XT[i * ldn + n] = 0.0;
        }
    /* (given inputs are the outputs of the block just made, made used) */
    /* C = ZT (nout x ldn), A(j, i) = W[j][i], B = XT (nin x ldn), i ascending */
    mgf_block_gemm(ZT, ldn, W, nin, 1, XT, ldn, nout, ldn, nin, 0);
}

/* recompute() at a head: every output's z from the parameters' and
 * inputs' numbers now, in the order of mgf_block.h, into the head's list
 * (where its gradients go in a backward pass, zero between passes); each
 * planned output takes its own from there (mgf_recompute), and the list is
 * zeroed again after the plan.  Without memory for the dense copies, the
 * same sums run on the nodes, one output at a time. */
/* Whether the planned nodes p[0..left) start with a head followed by all
 * of its outputs, in order, each of them still as made: the count of those
 * outputs, or -1. */
static inline int64_t mgf_layer_outputs_follow(const mgf_arena *A, const int32_t *p,
                                               int64_t left) {
    const mgf_node *nd = A->nodes, *h = &nd[p[0]];
    int64_t k, m;
    if (!mgf_is_head(h)) return -1;
    {
        const double *l = A->lg + MGF_LG_OFF(h);
        m = (int64_t)l[0] * (int64_t)l[2];
    }
    if (m >= left) return -1;
    for (k = 0; k < m; k++) {
        const mgf_node *x = &nd[p[1 + k]];
        if (p[1 + k] != p[0] + 1 + k || x->op != MGF_LAYER || (x->aux & MGF_AUX_HEAD) ||
            x->k.c[0] != p[0] || x->k.c[1] != k)
            return -1;
    }
    return m;
}

/* recompute() at a head; bulk: its outputs follow it in the arena and were
 * left out of the plan (mgf_layer_outputs_follow), so it writes them here,
 * z, act(z) and a zero grad, as each output's own case would. */
static void mgf_recompute_layer(mgf_node *nd, const int32_t *edges, double *lg,
                                const mgf_node *o, int bulk) {
    mgf_layer_view v = mgf_layer_of(nd, edges, lg, o);
    const int64_t N = v.N, nin = v.nin, nout = v.nout, P = v.P;
    int64_t n, j, i;
    const int64_t ldn = MGF_LDN(N);
    double *buf = (double *)mgf_realloc_n(NULL, nin * nout + ldn * nin + ldn * nout + 1,
                                          sizeof(double));
    if (buf && bulk) {
        double *ZT = buf + nin * nout + ldn * nin;
        const int act = o->aux & MGF_AUX_ACT;
        mgf_node *x = &nd[(o - nd) + 1];
        mgf_layer_forward_in(nd, v.par, v.in, N, nin, nout, P > nin, buf, buf + nin * nout,
                             ZT, 0, 0);
        for (n = 0; n < N; n++)
            for (j = 0; j < nout; j++, x++) {
                x->param = ZT[j * ldn + n];
                x->data = mgf_activate(act, x->param);
                x->grad = 0.0;
            }
        MGF_FREE(buf);
        return;
    }
    if (bulk) {  /* no memory: the sums in place, into the outputs */
        mgf_node *x = &nd[(o - nd) + 1];
        for (n = 0; n < N; n++)
            for (j = 0; j < nout; j++, x++) {
                double z = P > nin ? nd[v.par[j * P + nin]].data : 0.0;
                for (i = 0; i < nin; i++)
                    z = z + nd[v.par[j * P + i]].data * nd[v.in[n * nin + i]].data;
                x->param = z;
                x->data = mgf_activate(o->aux & MGF_AUX_ACT, z);
                x->grad = 0.0;
            }
        return;
    }
    if (buf) {
        double *ZT = buf + nin * nout + ldn * nin;
        mgf_layer_forward_in(nd, v.par, v.in, N, nin, nout, P > nin, buf, buf + nin * nout,
                             ZT, 0, 0);
        for (n = 0; n < N; n++)
            for (j = 0; j < nout; j++) v.d[n * nout + j] = ZT[j * ldn + n];
        MGF_FREE(buf);
    } else {
        for (n = 0; n < N; n++)
            for (j = 0; j < nout; j++) {
                double z = P > nin ? nd[v.par[j * P + nin]].data : 0.0;
                for (i = 0; i < nin; i++)
                    z = z + nd[v.par[j * P + i]].data * nd[v.in[n * nin + i]].data;
                v.d[n * nout + j] = z;
            }
    }
}

/* Append a block: the head, then the N * nout outputs, out[n * nout + j]
 * receiving output (n, j)'s index.  par: nout rows of P parameter indices
 * (w_j0 .. w_j(nin-1), b_j if bias); in: N rows of nin input indices.
 * Scratch: W (nout * nin), XT (nin * ldn), ZT (nout * ldn) doubles, ldn =
 * MGF_LDN(N).  Chaining blocks (the layers of one batch call): when YT is
 * not NULL (nout * ldn), the outputs' numbers are stored there too,
 * transposed (neuron by neuron), and the outputs are made used (the next
 * block takes them); x_given says that in is, in order, all the outputs
 * of the block just made that way and XT its YT (padding included).  The
 * caller
 * has reserved N * nout + 1 nodes, nout * P + N * nin edges and
 * MGF_LAYER_HDR + N * nout local derivatives, and checked that no node is
 * among the parameters and inputs twice. */
static inline void mgf_layer_build(mgf_arena *A, const int32_t *par, const int32_t *in,
                                   int64_t N, int64_t nin, int64_t nout, int act, int bias,
                                   double *W, double *XT, double *ZT, int32_t *out,
                                   int x_given, double *YT) {
    mgf_node *const nd = A->nodes;
    const int64_t P = nin + (bias ? 1 : 0), ne = nout * P + N * nin, ldn = MGF_LDN(N);
    int64_t n, j, i, h;
    mgf_node *o;
    double *l;
    mgf_layer_forward_in(nd, par, in, N, nin, nout, bias, W, XT, ZT, x_given, MGF_F_USED);
    h = A->n++;
    o = &nd[h];
    o->data = 0.0;
    o->grad = 0.0;
    o->param = (double)A->nl;
    o->n = (uint32_t)ne;
    o->op = MGF_LAYER;
    o->flags = N * nout > 0 ? MGF_F_USED : 0;
    o->aux = (uint16_t)(act | MGF_AUX_HEAD | (bias ? 0 : MGF_AUX_NOBIAS));
    if (x_given && N * nin > 0)
        o->aux |= MGF_AUX_CHAIN;  /* (checked again at backward: mgf_layer_chain) */
    MGF_ASSERT(A->handles[h] == NULL);
    if (ne > 2) {
        o->k.off = A->ne;
        A->ne += ne;
    } else {
        o->k.c[0] = o->k.c[1] = 0;
    }
    {
        int32_t *ch = MGF_KIDS(A->edges, o);
        if (nout * P) memcpy(ch, par, (size_t)(nout * P) * sizeof(int32_t));
        if (N * nin) memcpy(ch + nout * P, in, (size_t)(N * nin) * sizeof(int32_t));
    }
    l = A->lg + A->nl;
    l[0] = (double)N;
    l[1] = (double)nin;
    l[2] = (double)nout;
    memset(l + MGF_LAYER_HDR, 0, (size_t)(N * nout) * sizeof(double));
    A->nl += MGF_LAYER_HDR + N * nout;
    for (n = 0; n < N; n++)
        for (j = 0; j < nout; j++) {
            const int64_t k = A->n++, pos = n * nout + j;
            const double z = ZT[j * ldn + n];
            const double y = mgf_activate(act, z);
            MGF_ASSERT(A->handles[k] == NULL);
            mgf_fill_flags(&nd[k], MGF_LAYER, YT ? MGF_F_USED : 0, y, 1, (int32_t)h,
                           (int32_t)pos);
            if (YT) YT[j * ldn + n] = y;
            nd[k].param = z;
            nd[k].aux = (uint16_t)act;
            out[pos] = (int32_t)k;
        }
}

/* ---- local chain rules ---------------------------------------------------
 * Apply node o's rule once: add its contribution to each child's grad.
 * The expressions are the pure engine's, term for term, so both engines
 * round identically. */
MGF_INLINE void mgf_rule(mgf_node *nd, const int32_t *edges, const double *lg,
                         const mgf_node *o) {
    const double g = o->grad;
    switch (o->op) {
    case MGF_LAYER:
        if (o->aux & MGF_AUX_HEAD) {
            mgf_layer_backward(nd, edges, lg, o, -1, NULL, NULL);
        } else {
            /* an output: its d, for the head (the lg array is the arena's
             * own, written here and read by the head's rule) */
            double *d = (double *)lg + MGF_LG_OFF(&nd[o->k.c[0]]) + MGF_LAYER_HDR;
            d[o->k.c[1]] = mgf_activate_grad(o->aux & MGF_AUX_ACT, o->param, o->data, g);
        }
        break;
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
        x->grad += (e * pow(x->data, mgf_powc_em1(o))) * g;
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
        nd[o->k.c[0]].grad += mgf_tanh_slope(o->data) * g;
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
    case MGF_GELU: {
        mgf_node *x = &nd[o->k.c[0]];
        x->grad += mgf_gelu_slope(x->data) * g;
        break;
    }
    case MGF_SUM: {
        const int32_t *ch = MGF_KIDS(edges, o);
        for (uint32_t j = 0; j < o->n; j++) nd[ch[j]].grad += g;
        break;
    }
    case MGF_NEURON: {
        /* children: w_0..w_{m-1}, x_0..x_{m-1}, b */
        const int32_t *ch = MGF_KIDS(edges, o);
        const uint32_t m = (o->n - 1) / 2;
        const double pre = mgf_activate_grad(o->aux, o->param, o->data, g);
        for (uint32_t j = 0; j < m; j++) {
            mgf_node *w = &nd[ch[j]], *x = &nd[ch[m + j]];
            w->grad += x->data * pre;
            x->grad += w->data * pre;
        }
        nd[ch[2 * m]].grad += pre;
        break;
    }
    case MGF_LOCAL: {
        const int32_t *ch = MGF_KIDS(edges, o);
        const double *d = lg + MGF_LG_OFF(o);
        for (uint32_t j = 0; j < o->n; j++) nd[ch[j]].grad += d[j] * g;
        break;
    }
    default: /* MGF_LEAF, MGF_CUSTOM: nothing native to do */
        break;
    }
}

/* The same, for node i of an arena. */
static inline void mgf_local_backward(mgf_arena *A, int64_t i) {
    const mgf_node *o = &A->nodes[i];
    if (o->op == MGF_LAYER) {  /* by hand: a block output's own rule */
        if (!(o->aux & MGF_AUX_HEAD)) mgf_layer_output_rule(A->nodes, A->edges, A->lg, o);
        return;
    }
    mgf_rule(A->nodes, A->edges, A->lg, o);
}

/* Node o's local derivatives d out / d child_t at the current data, one per
 * child in order, into out[0..o->n): the factor each rule above multiplies
 * out.grad by (for a neuron: x_j * act', w_j * act', act').  Leaves and
 * nodes whose rule is Python code have none: returns the count written. */
static inline uint32_t mgf_local_grads(const mgf_arena *A, const mgf_node *o, double *out) {
    const mgf_node *nd = A->nodes;
    const int32_t *ch = MGF_KIDS(A->edges, o);
    uint32_t j;
    switch (o->op) {
    case MGF_ADD: out[0] = 1.0; out[1] = 1.0; return 2;
    case MGF_MUL: out[0] = nd[ch[1]].data; out[1] = nd[ch[0]].data; return 2;
    case MGF_POWC: {
        const double e = o->param;
        out[0] = e * pow(nd[ch[0]].data, mgf_powc_em1(o));
        return 1;
    }
    case MGF_POWV: {
        const double xd = nd[ch[0]].data, e = nd[ch[1]].data;
        out[0] = e * pow(xd, e - 1.0);
        if (xd > 0.0) out[1] = o->data * log(xd);
        else if (xd == 0.0 && e >= 0.0) out[1] = 0.0;
        else out[1] = NAN;
        return 2;
    }
    case MGF_RELU: out[0] = (double)(o->data > 0); return 1;
    case MGF_TANH: out[0] = mgf_tanh_slope(o->data); return 1;
    case MGF_EXP: out[0] = o->data; return 1;
    case MGF_LOG: out[0] = 1.0 / nd[ch[0]].data; return 1;
    case MGF_SIGMOID: out[0] = o->data * (1.0 - o->data); return 1;
    case MGF_GELU: out[0] = mgf_gelu_slope(nd[ch[0]].data); return 1;
    case MGF_SUM:
        for (j = 0; j < o->n; j++) out[j] = 1.0;
        return o->n;
    case MGF_NEURON: {
        const uint32_t m = (o->n - 1) / 2;
        const double s = mgf_activate_grad(o->aux, o->param, o->data, 1.0);
        for (j = 0; j < m; j++) {
            out[j] = nd[ch[m + j]].data * s;
            out[m + j] = nd[ch[j]].data * s;
        }
        out[2 * m] = s;
        return o->n;
    }
    case MGF_LOCAL:
        memcpy(out, A->lg + MGF_LG_OFF(o), (size_t)o->n * sizeof(double));
        return o->n;
    case MGF_LAYER: {  /* as a fused neuron's, over the children it shows */
        mgf_layer_view v;
        int64_t pos, n, jj, i;
        double s;
        if (o->aux & MGF_AUX_HEAD) return 0;
        v = mgf_layer_of(nd, A->edges, A->lg, o);
        pos = o->k.c[1];
        n = pos / v.nout;
        jj = pos % v.nout;
        s = mgf_activate_grad(o->aux & MGF_AUX_ACT, o->param, o->data, 1.0);
        for (i = 0; i < v.nin; i++) {
            out[i] = nd[v.in[n * v.nin + i]].data * s;
            out[v.nin + i] = nd[v.par[jj * v.P + i]].data * s;
        }
        if (v.P > v.nin) out[2 * v.nin] = s;
        return (uint32_t)(2 * v.nin + (v.P - v.nin));
    }
    default:
        return 0;
    }
}

/* Pre-activation of one neuron: ((b + w0*x0) + w1*x1) + ..., the order in
 * which micrograd's Neuron sums. ch holds w..., x..., b as above. */
static inline double mgf_neuron_forward(const mgf_node *nd, const int32_t *ch, uint32_t m) {
    double z = nd[ch[2 * m]].data;
    for (uint32_t j = 0; j < m; j++) z = z + nd[ch[j]].data * nd[ch[m + j]].data;
    return z;
}

/* A MGF_NEURON node's step in the backward sweep: marks each child in seen
 * (as the sweep marks every node's children) and applies the node's rule,
 * exactly as mgf_rule does, in one pass over the children list instead of
 * two. */
MGF_INLINE void mgf_neuron_sweep(mgf_node *nd, const int32_t *edges, const mgf_node *o,
                                 uint8_t *seen) {
    const int32_t *ch = MGF_KIDS(edges, o);
    const uint32_t m = (o->n - 1) / 2;
    const double pre = mgf_activate_grad(o->aux, o->param, o->data, o->grad);
    for (uint32_t j = 0; j < m; j++) {
        const int32_t a = ch[j], c = ch[m + j];
        mgf_node *w = &nd[a], *x = &nd[c];
        seen[a] = 1;
        seen[c] = 1;
        w->grad += x->data * pre;
        x->grad += w->data * pre;
    }
    seen[ch[2 * m]] = 1;
    nd[ch[2 * m]].grad += pre;
}

/* Marks each child of node o in seen (a visited parent marks its
 * children). */
MGF_INLINE void mgf_mark_kids(const int32_t *edges, const mgf_node *o, uint8_t *seen) {
    const int32_t *ch = MGF_KIDS(edges, o);
    for (uint32_t t = 0; t < o->n; t++) seen[ch[t]] = 1;
}

/* In builds with MGF_DEBUG, checks that the n bytes at p are zero (the
 * backward map between passes); nothing otherwise. */
static inline void mgf_assert_zero(const uint8_t *p, int64_t n) {
#ifdef MGF_DEBUG
    for (int64_t t = 0; t < n; t++) MGF_ASSERT(p[t] == 0);
#endif
    (void)p; (void)n;
}

/* The backward sweep (Value.backward's loop): visit the marked nodes from
 * index i downward, counting them in *visited.  seen[k] is 1 once a
 * visited parent has marked node k; each visited node marks its children
 * and applies its rule (mgf_rule; '+', '*' and fused neurons mark and
 * apply in one step, with the same arithmetic in the same order).  The
 * '+' and '*' cases restate mgf_rule's two lines on purpose: marking
 * through a uint8_t pointer may alias the node, so marking first and then
 * calling mgf_rule reloads the node (45 instructions per node against 33
 * on the demo's tuned step, callgrind, measured with the loop's earlier
 * switch).  The loop walks a node pointer and a map pointer down together
 * and tests the op with ifs, the common ones first: 32 instructions per
 * node there, against 34 with an index and a switch in the same build.
 * A '+' node whose second child is a '*' node just below it (acc + w*x,
 * the pair each input adds to a neuron's chain) visits that child at once,
 * and goes on down the chain while the pair's acc is such a '+' node too
 * (see the loop): the demo's tuned step's backward pass from 2.16M to
 * 1.81M instructions.
 * Each visited node's byte is cleared, so a pass that runs to the end
 * leaves the map zero for the next one (see _seen_map).
 * Unmarked stretches are skipped eight bytes at a time.  Returns the index
 * of a node whose rule is Python code (MGF_F_PYBW: its children marked,
 * its rule not applied; the caller runs it and resumes below it), or 0
 * when the sweep is done (node 0 is the sentinel, never marked). */
static inline int64_t mgf_sweep(mgf_arena *A, uint8_t *seen, int64_t i, int64_t *visited) {
    mgf_node *const nd = A->nodes;
    const int32_t *const edges = A->edges;
    const double *const lg = A->lg;
    int64_t count = 0;
    mgf_node *o = nd + i;
    uint8_t *s = seen + i;
    while (o > nd) {
        if (!*s) {
            if (o - nd >= 8) {
                uint64_t chunk;
                memcpy(&chunk, s - 8, 8);
                if (chunk == 0) {
                    o -= 8;
                    s -= 8;
                    continue;
                }
            }
            o--;
            s--;
            continue;
        }
        count++;
        *s = 0;  /* nothing marks it again: its parents are all above */
        if (o->flags & MGF_F_PYBW) {
            mgf_mark_kids(edges, o, seen);
            *visited += count;
            return o - nd;
        }
        if (o->op == MGF_ADD) {
            /* A '+' node whose second child is a '*' node just below it
             * (acc + w*x, the pair each input adds to a neuron's chain):
             * that child is the next node visited, so it is visited at
             * once; and while the first child is again such a '+' node
             * just below the pair, the next one visited, it is visited at
             * once too, down the chain.  The same steps in the same order
             * as turns of the outer loop, without their tests. */
            for (;;) {
                const int32_t a = o->k.c[0], b = o->k.c[1];
                const double g = o->grad;
                mgf_node *const p = &nd[a], *const m = &nd[b];
                seen[a] = 1;
                p->grad += g;
                m->grad += g;
                if (m != o - 1 || m->op != MGF_MUL || (m->flags & MGF_F_PYBW)) {
                    seen[b] = 1;
                    break;
                }
                {
                    const int32_t c = m->k.c[0], d = m->k.c[1];
                    const double gm = m->grad;
                    mgf_node *const x = &nd[c], *const y = &nd[d];
                    s[-1] = 0;
                    seen[c] = 1;
                    seen[d] = 1;
                    x->grad += y->data * gm;
                    y->grad += x->data * gm;
                }
                count++;
                o -= 2;
                s -= 2;
                if (p != o || p->op != MGF_ADD || (p->flags & MGF_F_PYBW))
                    goto below_pair;
                *s = 0;
                count++;
            }
        } else if (o->op == MGF_MUL) {
            const int32_t a = o->k.c[0], b = o->k.c[1];
            const double g = o->grad;
            mgf_node *x = &nd[a], *y = &nd[b];
            seen[a] = 1;
            seen[b] = 1;
            x->grad += y->data * g;
            y->grad += x->data * g;
        } else if (o->op == MGF_NEURON) {
            mgf_neuron_sweep(nd, edges, o, seen);
        } else if (o->op == MGF_LAYER && (o->aux & MGF_AUX_HEAD)) {
            count += mgf_layer_sweep(nd, edges, lg, o, seen);
        } else {
            mgf_mark_kids(edges, o, seen);
            mgf_rule(nd, edges, lg, o);
        }
        o--;
        s--;
    below_pair:;
    }
    *visited += count;
    return 0;
}

/* ---- whole fused layers ---------------------------------------------------
 * mgf_fused_layer appends one fused layer for one input vector: nout
 * MGF_NEURON nodes, in neuron order, neuron j with children
 * w_j0 .. w_j(nin-1), x[0 .. nin-1], b_j, aux = act and param = z (the
 * pre-activation), where row j of wb
 * (wb + j * (nin + 1)) holds w_j0 .. w_j(nin-1), b_j: the nodes _run_plan
 * used to make one at a time, with the same children, flags and data.  Each
 * neuron's sum is z = ((b + w_0*x_0) + w_1*x_1) + ..., the order of
 * mgf_neuron_forward; the sums of MGF_LANES neurons run side by side, as
 * independent chains of additions (each in its own order) that the
 * processor overlaps, and the inputs' data are read once per layer into xd
 * (scratch of nin doubles).  out[j] receives neuron j's node index.  The
 * caller has reserved nout nodes and, when 2*nin+1 > 2, nout*(2*nin+1)
 * edges. */
#define MGF_LANES 4

MGF_INLINE void mgf_neuron_node(mgf_arena *A, int64_t i, const int32_t *w, const int32_t *x,
                                int32_t b, uint32_t nin, int act, double z) {
    mgf_node *o = &A->nodes[i];
    const uint32_t m = 2 * nin + 1;
    int32_t *ch;
    o->data = mgf_activate(act, z);
    o->grad = 0.0;
    o->param = z;
    o->k.off = 0;
    o->n = m;
    o->op = MGF_NEURON;
    o->flags = 0;
    o->aux = (uint16_t)act;
    MGF_ASSERT(A->handles[i] == NULL);
    if (m > 2) {
        MGF_ASSERT(A->ne + (int64_t)m <= A->ecap);
        o->k.off = A->ne;
        A->ne += m;
    }
    ch = MGF_KIDS(A->edges, o);
    if (nin) {
        memcpy(ch, w, (size_t)nin * sizeof(int32_t));
        memcpy(ch + nin, x, (size_t)nin * sizeof(int32_t));
    }
    ch[2 * nin] = b;
}

static inline void mgf_fused_layer(mgf_arena *A, const int32_t *wb, const int32_t *x,
                                   uint32_t nin, uint32_t nout, int act, double *xd,
                                   int32_t *out) {
    mgf_node *const nd = A->nodes;
    const size_t rs = (size_t)nin + 1; /* row stride of wb */
    uint32_t j = 0, t, l;
    if (nout == 0) return;
    MGF_ASSERT(A->n + (int64_t)nout <= A->cap);
    for (t = 0; t < nin; t++) {
        xd[t] = nd[x[t]].data;
        nd[x[t]].flags |= MGF_F_USED;
    }
    for (; j + MGF_LANES <= nout; j += MGF_LANES) {
        const int32_t *w0 = wb + j * rs, *w1 = w0 + rs, *w2 = w1 + rs, *w3 = w2 + rs;
        double zs[MGF_LANES];
        double z0 = nd[w0[nin]].data, z1 = nd[w1[nin]].data, z2 = nd[w2[nin]].data,
               z3 = nd[w3[nin]].data;
        for (t = 0; t < nin; t++) {
            const double xt = xd[t];
            mgf_node *a0 = &nd[w0[t]], *a1 = &nd[w1[t]], *a2 = &nd[w2[t]], *a3 = &nd[w3[t]];
            z0 = z0 + a0->data * xt;
            z1 = z1 + a1->data * xt;
            z2 = z2 + a2->data * xt;
            z3 = z3 + a3->data * xt;
            a0->flags |= MGF_F_USED;
            a1->flags |= MGF_F_USED;
            a2->flags |= MGF_F_USED;
            a3->flags |= MGF_F_USED;
        }
        zs[0] = z0;
        zs[1] = z1;
        zs[2] = z2;
        zs[3] = z3;
        for (l = 0; l < MGF_LANES; l++) {
            const int32_t *row = wb + (j + l) * rs;
            int64_t i = A->n++;
            nd[row[nin]].flags |= MGF_F_USED;
            mgf_neuron_node(A, i, row, x, row[nin], nin, act, zs[l]);
            out[j + l] = (int32_t)i;
        }
    }
    for (; j < nout; j++) {
        const int32_t *row = wb + j * rs;
        double z = nd[row[nin]].data;
        int64_t i;
        for (t = 0; t < nin; t++) {
            mgf_node *a = &nd[row[t]];
            z = z + a->data * xd[t];
            a->flags |= MGF_F_USED;
        }
        nd[row[nin]].flags |= MGF_F_USED;
        i = A->n++;
        mgf_neuron_node(A, i, row, x, row[nin], nin, act, z);
        out[j] = (int32_t)i;
    }
}

/* ---- gradients as graphs (grad(..., create_graph=True)) ---------------------
 * mgf_grad_graph builds, for the nodes marked in mark[0..top], the graph of
 * their gradients out of ordinary nodes, so that it can be differentiated
 * again.  gi[k] is node k's gradient node (-1: none yet); the caller sets
 * it for the outputs (their seeds).  Nodes are visited in reverse creation
 * order, as backward() visits them, and each node's rule is written as
 * nodes term for term (mgf_rule above): every new node's data is the
 * number that rule computes, and each child's gradient accumulates its
 * contributions in the order backward() adds them, starting from 0.0 as
 * a grad does.  So the gradient nodes hold the doubles backward() gives.
 *
 *   ADD, SUM      g                      (the gradient node itself)
 *   MUL           y * g, x * g
 *   POWC x**e     (e * x**(e-1)) * g     (x**(e-1) with the rule's pow)
 *   POWV x**y     (y * x**(y + -1)) * g, (out * log(x)) * g
 *                 (0 or nan for that factor where x <= 0, as the rule)
 *   RELU          mask * g               (mask: a leaf 1.0 or 0.0)
 *   TANH          (t**2 * -1 + 1) * g    (= 1 - t**2, bit for bit)
 *   EXP           out * g
 *   LOG           x**-1 * g              (data: 1.0 / x, the rule's)
 *   SIGMOID       (s * (s * -1 + 1)) * g
 *   NEURON        pre = its activation's factor * g as above (linear: g);
 *                 x_j * pre, w_j * pre, pre
 *
 * New nodes come after every marked node, so the sweep never visits them.
 * The caller has checked that no marked node is one this cannot write
 * (mgf_grad_graph_refuses) and reserved mgf_grad_graph_room() nodes. */
#define MGF_AUX_GRAD_ 0x8000 /* = MGF_AUX_GRAD: a node of a gradient graph */
#define MGF_GG_MAX_PER_NODE 8 /* nodes a rule writes besides per-child terms */
#define MGF_GG_MAX_PER_KID 7  /* nodes per child: its term and accumulation */

/* 1 if grad(create_graph=True) cannot write node o's rule as nodes: a
 * Python _backward, or an op or activation not in the table above (a new
 * op is refused until its rule is written here). */
static inline int mgf_grad_graph_refuses(const mgf_node *o) {
    if (o->flags & MGF_F_PYBW) return 1;
    switch (o->op) {
    case MGF_LEAF: case MGF_CUSTOM: case MGF_ADD: case MGF_SUM: case MGF_MUL:
    case MGF_POWC: case MGF_POWV: case MGF_RELU: case MGF_TANH: case MGF_EXP:
    case MGF_LOG: case MGF_SIGMOID:
        return 0;
    case MGF_NEURON:
        return !(o->aux == MGF_ACT_LINEAR || o->aux == MGF_ACT_RELU || o->aux == MGF_ACT_TANH
                 || o->aux == MGF_ACT_SIGMOID);
    default:
        return 1;
    }
}

static inline int64_t mgf_grad_graph_room(const mgf_node *o) {
    return MGF_GG_MAX_PER_NODE + MGF_GG_MAX_PER_KID * (int64_t)o->n;
}

static inline int32_t mgf_gg_push(mgf_arena *A, uint8_t op, double data, uint32_t n,
                                  int32_t a, int32_t b, double param) {
    int64_t i = mgf_push_node(A, op, data, n, a, b);
    A->nodes[i].param = param;
    A->nodes[i].aux = MGF_AUX_GRAD_; /* (see mgf_recompute) */
    if (n >= 1) A->nodes[a].flags |= MGF_F_USED;
    if (n >= 2) A->nodes[b].flags |= MGF_F_USED;
    return (int32_t)i;
}
#define MGF_GD(k) (A->nodes[k].data)
static inline int32_t mgf_gg_leaf(mgf_arena *A, double x) {
    return mgf_gg_push(A, MGF_LEAF, x, 0, 0, 0, 0.0);
}
static inline int32_t mgf_gg_mul(mgf_arena *A, int32_t a, int32_t b) {
    return mgf_gg_push(A, MGF_MUL, MGF_GD(a) * MGF_GD(b), 2, a, b, 0.0);
}
static inline int32_t mgf_gg_add(mgf_arena *A, int32_t a, int32_t b) {
    return mgf_gg_push(A, MGF_ADD, MGF_GD(a) + MGF_GD(b), 2, a, b, 0.0);
}
/* 1 - v as upstream writes it, v * -1 + 1 (the same double as 1.0 - v) */
static inline int32_t mgf_gg_one_minus(mgf_arena *A, int32_t v) {
    int32_t m = mgf_gg_push(A, MGF_MUL, mgf_times_minus_one(MGF_GD(v)), 2, v,
                            mgf_gg_leaf(A, -1.0), 0.0);
    return mgf_gg_add(A, m, mgf_gg_leaf(A, 1.0));
}
/* x ** e as a node whose data is given (the rule's own pow, which never raises) */
static inline int32_t mgf_gg_powc(mgf_arena *A, int32_t x, double e, double data) {
    return mgf_gg_push(A, MGF_POWC, data, 1, x, 0, e);
}
/* the factor d act / d out of an activation, times g (mgf_activate_grad) */
static inline int32_t mgf_gg_act(mgf_arena *A, int act, int32_t out, int32_t g) {
    volatile double two = 2.0;
    switch (act) {
    case MGF_ACT_RELU:
        return mgf_gg_mul(A, mgf_gg_leaf(A, (double)(MGF_GD(out) > 0)), g);
    case MGF_ACT_TANH: {
        int32_t sq = mgf_gg_powc(A, out, 2.0, pow(MGF_GD(out), two));
        return mgf_gg_mul(A, mgf_gg_one_minus(A, sq), g);
    }
    case MGF_ACT_SIGMOID:
        return mgf_gg_mul(A, mgf_gg_mul(A, out, mgf_gg_one_minus(A, out)), g);
    default:
        return g;
    }
}
/* child c gets the term t: gi[c] = t first (0.0 + t where t is -0.0, as a
 * grad starting from 0.0 would have it), then gi[c] + t */
static inline void mgf_gg_acc(mgf_arena *A, int32_t *gi, int32_t c, int32_t t) {
    if (gi[c] >= 0)
        gi[c] = mgf_gg_add(A, gi[c], t);
    else if (MGF_GD(t) == 0.0 && signbit(MGF_GD(t)))
        gi[c] = mgf_gg_add(A, mgf_gg_leaf(A, 0.0), t);
    else
        gi[c] = t;
}

static inline void mgf_grad_graph(mgf_arena *A, uint8_t *mark, int32_t *gi, int64_t top) {
    int64_t i;
    for (i = top; i > 0; i--) {
        mgf_node *o;
        const int32_t *ch;
        int32_t g, x, y, t;
        uint32_t j, m;
        if (!mark[i]) continue;
        o = &A->nodes[i];
        ch = MGF_KIDS(A->edges, o);
        for (j = 0; j < o->n; j++) mark[ch[j]] = 1;
        g = gi[i];
        if (g < 0) continue;  /* nothing reached it with a gradient */
        switch (o->op) {
        case MGF_ADD:
            mgf_gg_acc(A, gi, o->k.c[0], g);
            mgf_gg_acc(A, gi, o->k.c[1], g);
            break;
        case MGF_SUM:
            for (j = 0; j < o->n; j++) mgf_gg_acc(A, gi, A->edges[o->k.off + j], g);
            break;
        case MGF_MUL:
            x = o->k.c[0];
            y = o->k.c[1];
            mgf_gg_acc(A, gi, x, mgf_gg_mul(A, y, g));
            mgf_gg_acc(A, gi, y, mgf_gg_mul(A, x, g));
            break;
        case MGF_POWC: {
            const double e = o->param, em1 = mgf_powc_em1(o);
            x = o->k.c[0];
            t = mgf_gg_powc(A, x, em1, pow(MGF_GD(x), em1));
            t = mgf_gg_mul(A, mgf_gg_leaf(A, e), t);
            mgf_gg_acc(A, gi, x, mgf_gg_mul(A, t, g));
            break;
        }
        case MGF_POWV: {
            const double xd = MGF_GD(o->k.c[0]);
            int32_t em1, d;
            x = o->k.c[0];
            y = o->k.c[1];
            em1 = mgf_gg_add(A, y, mgf_gg_leaf(A, -1.0));
            t = mgf_gg_push(A, MGF_POWV, pow(xd, MGF_GD(em1)), 2, x, em1, 0.0);
            t = mgf_gg_mul(A, y, t);
            mgf_gg_acc(A, gi, x, mgf_gg_mul(A, t, g));
            if (xd > 0.0)
                d = mgf_gg_mul(A, (int32_t)i, mgf_gg_push(A, MGF_LOG, log(xd), 1, x, 0, 0.0));
            else
                d = mgf_gg_leaf(A, xd == 0.0 && MGF_GD(y) >= 0.0 ? 0.0 : NAN);
            mgf_gg_acc(A, gi, y, mgf_gg_mul(A, d, g));
            break;
        }
        case MGF_RELU:
            mgf_gg_acc(A, gi, o->k.c[0], mgf_gg_act(A, MGF_ACT_RELU, (int32_t)i, g));
            break;
        case MGF_TANH:
            mgf_gg_acc(A, gi, o->k.c[0], mgf_gg_act(A, MGF_ACT_TANH, (int32_t)i, g));
            break;
        case MGF_SIGMOID:
            mgf_gg_acc(A, gi, o->k.c[0], mgf_gg_act(A, MGF_ACT_SIGMOID, (int32_t)i, g));
            break;
        case MGF_EXP:
            mgf_gg_acc(A, gi, o->k.c[0], mgf_gg_mul(A, (int32_t)i, g));
            break;
        case MGF_LOG:
            x = o->k.c[0];
            t = mgf_gg_powc(A, x, -1.0, 1.0 / MGF_GD(x));
            mgf_gg_acc(A, gi, x, mgf_gg_mul(A, t, g));
            break;
        case MGF_NEURON: {
            /* children: w_0..w_{m-1}, x_0..x_{m-1}, b */
            int32_t pre;
            m = (o->n - 1) / 2;
            pre = mgf_gg_act(A, o->aux, (int32_t)i, g);
            for (j = 0; j < m; j++) {
                mgf_gg_acc(A, gi, ch[j], mgf_gg_mul(A, ch[m + j], pre));
                mgf_gg_acc(A, gi, ch[m + j], mgf_gg_mul(A, ch[j], pre));
            }
            mgf_gg_acc(A, gi, ch[2 * m], pre);
            break;
        }
        default: /* LEAF, CUSTOM without a Python rule: nothing */
            break;
        }
    }
}
#undef MGF_GD

/* ---- replay: recompute a graph from its leaves --------------------------------
 * mgf_recompute re-evaluates the nodes plan[0..n) (ascending indices, so
 * children first) from their children's current data (four[t] 1: plan[t]
 * and the three after it are neurons that mgf_neurons4 allows to run side
 * by side; 2: plan[t] is a block's head whose outputs, all of them, were
 * left out of the plan for it to write: mgf_layer_outputs_follow), with
 * each op's
 * forward math as the op computes it when it is made, and sets their
 * grads to 0; leaves are skipped (never in a plan).  On a forward error it
 * stops at that node: *err_at is its index, the result the error code;
 * the nodes before it hold their new data and zero grads, it and the
 * nodes after it are as they were.  The caller has checked every planned
 * node with mgf_replay_refuses. */
#define MGF_AUX_GRAD 0x8000      /* made by grad(create_graph=True)           */
#define MGF_AUX_SUM_VSTART 0x1   /* SUM: child 0 is the start (a Value)       */
#define MGF_AUX_SUM_FOLDED 0x2   /* SUM: numbers among the items were folded  */

/* Why node o cannot be recomputed: 0 (it can), 1 its forward is Python's
 * (a custom op, or microgpt's local gradients), 2 it belongs to a gradient
 * graph, 3 a sum that folded plain numbers into its data, 4 an op that
 * mgf_recompute does not know (a new op is refused until it has its case
 * there and its line here). */
static inline int mgf_replay_refuses(const mgf_node *o) {
    switch (o->op) {
    case MGF_CUSTOM: case MGF_LOCAL:
        return 1;
    case MGF_NEURON: case MGF_LAYER:
        return 0;
    case MGF_SUM:
        if (o->aux & MGF_AUX_SUM_FOLDED) return 3;
        /* fall through */
    case MGF_ADD: case MGF_MUL: case MGF_POWC: case MGF_POWV: case MGF_RELU:
    case MGF_TANH: case MGF_EXP: case MGF_LOG: case MGF_SIGMOID:
    case MGF_GELU:  /* (a new op: its line here, its case in mgf_recompute) */
        return (o->aux & MGF_AUX_GRAD) ? 2 : 0;
    default:
        return 4;
    }
}

/* Whether the four planned nodes p[0..3] are neurons with the same number
 * of inputs, none of them a child of another (the neurons of one layer):
 * then mgf_recompute runs their sums side by side, each still
 * ((b + w0*x0) + w1*x1) + ... in its own order, so that four additions in
 * flight hide each other's latency.  Checked once, when a plan is made. */
static inline int mgf_neurons4(const mgf_node *nd, const int32_t *edges, const int32_t *p) {
    const uint32_t n = nd[p[0]].n;
    int k;
    uint32_t j;
    for (k = 0; k < 4; k++)
        if (nd[p[k]].op != MGF_NEURON || nd[p[k]].n != n) return 0;
    for (k = 1; k < 4; k++) {
        const int32_t *c = edges + nd[p[k]].k.off;
        for (j = 0; j < n; j++)
            if (c[j] >= p[0]) return 0;  /* a child made after the first */
    }
    return 1;
}

/* (out of line: the loop of mgf_recompute stays small for the other ops) */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void mgf_recompute_neurons4(mgf_node *nd, const int32_t *edges, const int32_t *p) {
    const uint32_t m = (nd[p[0]].n - 1) / 2;
    const int32_t *c0 = edges + nd[p[0]].k.off, *c1 = edges + nd[p[1]].k.off;
    const int32_t *c2 = edges + nd[p[2]].k.off, *c3 = edges + nd[p[3]].k.off;
    double z[4];
    uint32_t j;
    int k;
    double z0 = nd[c0[2 * m]].data, z1 = nd[c1[2 * m]].data;
    double z2 = nd[c2[2 * m]].data, z3 = nd[c3[2 * m]].data;
    for (j = 0; j < m; j++) {
        z0 = z0 + nd[c0[j]].data * nd[c0[m + j]].data;
        z1 = z1 + nd[c1[j]].data * nd[c1[m + j]].data;
        z2 = z2 + nd[c2[j]].data * nd[c2[m + j]].data;
        z3 = z3 + nd[c3[j]].data * nd[c3[m + j]].data;
    }
    z[0] = z0;
    z[1] = z1;
    z[2] = z2;
    z[3] = z3;
    for (k = 0; k < 4; k++) {
        mgf_node *o = &nd[p[k]];
        o->param = z[k];
        o->data = mgf_activate(o->aux, z[k]);
        o->grad = 0.0;
    }
}

static inline int mgf_recompute(mgf_arena *A, const int32_t *plan, const uint8_t *four,
                                int64_t n, int64_t *err_at) {
    mgf_node *const nd = A->nodes;
    const int32_t *const edges = A->edges;
    int64_t t;
    for (t = 0; t < n; t++) {
        mgf_node *o = &nd[plan[t]];
        double r = 0.0;
        int err = MGF_OK;
        switch (o->op) {
        case MGF_ADD:
            r = nd[o->k.c[0]].data + nd[o->k.c[1]].data;
            break;
        case MGF_MUL:
            r = nd[o->k.c[0]].data * nd[o->k.c[1]].data;
            break;
        case MGF_POWC:
            err = mgf_pow_forward(nd[o->k.c[0]].data, o->param, &r);
            break;
        case MGF_POWV:
            err = mgf_pow_forward(nd[o->k.c[0]].data, nd[o->k.c[1]].data, &r);
            break;
        case MGF_RELU:
            r = mgf_relu(nd[o->k.c[0]].data);
            break;
        case MGF_TANH:
            r = mgf_tanh(nd[o->k.c[0]].data);
            break;
        case MGF_EXP:
            err = mgf_exp_forward(nd[o->k.c[0]].data, &r);
            break;
        case MGF_LOG:
            err = mgf_log_forward(nd[o->k.c[0]].data, &r);
            break;
        case MGF_SIGMOID:
            r = mgf_sigmoid(nd[o->k.c[0]].data);
            break;
        case MGF_GELU:
            r = mgf_gelu(nd[o->k.c[0]].data);
            break;
        case MGF_SUM: {
            const int32_t *ch = MGF_KIDS(edges, o);
            uint32_t j = 0;
            double acc = o->param;
            if (o->aux & MGF_AUX_SUM_VSTART) acc = nd[ch[j++]].data;
            for (; j < o->n; j++) acc = acc + nd[ch[j]].data;
            r = acc;
            break;
        }
        case MGF_NEURON: {
            const uint32_t m = (o->n - 1) / 2;
            double z;
            if (four[t]) {  /* four neurons at once (mgf_neurons4) */
                mgf_recompute_neurons4(nd, edges, plan + t);
                t += 3;
                continue;
            }
            z = mgf_neuron_forward(nd, edges + o->k.off, m);
            o->param = z;
            r = mgf_activate(o->aux, z);
            break;
        }
        case MGF_LAYER: {
            if (o->aux & MGF_AUX_HEAD) {
                mgf_recompute_layer(nd, edges, A->lg, o, four[t] == 2);
                o->grad = 0.0;
                continue;
            }
            /* an output: its z, left by its head in the head's list */
            double *d = A->lg + MGF_LG_OFF(&nd[o->k.c[0]]) + MGF_LAYER_HDR;
            o->param = d[o->k.c[1]];
            d[o->k.c[1]] = 0.0;
            r = mgf_activate(o->aux & MGF_AUX_ACT, o->param);
            break;
        }
        default: /* LEAF: never planned */
            continue;
        }
        if (err) {
            *err_at = plan[t];
            return err;
        }
        o->data = r;
        o->grad = 0.0;
    }
    /* the heads' lists hold the z of outputs not planned: zero again */
    for (t = 0; t < n; t++) {
        const mgf_node *o = &nd[plan[t]];
        if (mgf_is_head(o)) {
            const double *l = A->lg + MGF_LG_OFF(o);
            memset((double *)l + MGF_LAYER_HDR, 0,
                   (size_t)((int64_t)l[0] * (int64_t)l[2]) * sizeof(double));
        }
    }
    return MGF_OK;
}

#endif /* MGF_CORE_H */
