# Declarations of csrc/mgf_core.h for Cython.  This folder is only on
# cythonize's include path: it is not a package and holds no code.

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t


cdef extern from "mgf_core.h" nogil:
    # the op codes MGF_<NAME> and activation codes MGF_ACT_<NAME> are
    # declared in mgf_codes.pxd, which setup.py makes from the header's
    # MGF_OPS and MGF_ACTS lists; the tables made from the same lists:
    const char *const mgf_op_names[]
    const char *const mgf_op_codes[]
    const char *const mgf_act_names[]
    const uint8_t mgf_act_ops[]

    enum:
        MGF_OK
        MGF_EZERODIV
        MGF_EOVERFLOW
        MGF_EDOMAIN

    enum:
        MGF_CHECK_OK
        MGF_CHECK_SIZES
        MGF_CHECK_SENTINEL
        MGF_CHECK_OP
        MGF_CHECK_EDGES
        MGF_CHECK_CHILD
        MGF_CHECK_PIN
        MGF_CHECK_LGRADS
        MGF_CHECK_SLOTS

    int MGF_F_PYBW
    int MGF_F_PINNED
    int MGF_F_INTEXP
    int MGF_F_EM1_SAME
    int MGF_F_EM1_DOWN
    int MGF_F_USED
    int MGF_F_WASUSED
    int64_t MGF_MAX_NODES

    ctypedef union mgf_kids:
        int32_t c[2]
        int64_t off

    ctypedef struct mgf_node:
        double data
        double grad
        double param
        mgf_kids k
        uint32_t n
        uint8_t op
        uint8_t flags
        uint16_t aux

    ctypedef struct mgf_arena:
        mgf_node *nodes
        void **handles
        int64_t n
        int64_t cap
        int32_t *edges
        int64_t ne
        int64_t ecap
        double *lg
        int64_t nl
        int64_t lcap

    int32_t *mgf_children(const mgf_arena *A, mgf_node *o)

    ctypedef struct mgf_handover:
        void **holder
        void **taken
        int64_t n
        int32_t *moved
        int64_t nmoved
    void mgf_rewire(mgf_arena *A, int64_t i, uint8_t op, double data, uint32_t n,
                    const int32_t *kids, const double *lgs)
    bint mgf_grad_graph_refuses(const mgf_node *o)
    int64_t mgf_grad_graph_room(const mgf_node *o)
    int32_t mgf_gg_add(mgf_arena *A, int32_t a, int32_t b)
    void mgf_grad_graph(mgf_arena *A, uint8_t *mark, int32_t *gi, int64_t top)
    int MGF_AUX_SUM_VSTART
    int MGF_AUX_SUM_FOLDED
    int mgf_replay_refuses(const mgf_node *o)
    int mgf_neurons4(const mgf_node *nd, const int32_t *edges, const int32_t *p)
    int mgf_recompute(mgf_arena *A, const int32_t *plan, const uint8_t *four, int64_t n,
                      int64_t *err_at)
    int mgf_hand_over_pins(const mgf_arena *A, mgf_handover *H)
    void mgf_handover_free(mgf_handover *H)
    int mgf_resize_nodes(mgf_arena *A, int64_t cap)
    int mgf_reserve_edges(mgf_arena *A, int64_t more)
    int mgf_resize_edges(mgf_arena *A, int64_t cap)
    int mgf_reserve_lg(mgf_arena *A, int64_t more)
    int mgf_resize_lg(mgf_arena *A, int64_t cap)
    int64_t MGF_LG_OFF(const mgf_node *o)
    void mgf_release(mgf_arena *A)
    int64_t mgf_push(mgf_arena *A, uint8_t op, double data)
    int64_t mgf_push_node(mgf_arena *A, uint8_t op, double data, uint32_t n,
                          int32_t c0, int32_t c1)
    int32_t mgf_chain_neuron(mgf_arena *A, const int32_t *w, const int32_t *x,
                             const double *consts, int32_t b, uint32_t m, double *z)
    bint mgf_indices_current(const mgf_arena *A, const int32_t *idx, void **h, int64_t n)
    void mgf_assert_indices_current(const mgf_arena *A, const int32_t *idx, void **h,
                                    int64_t n)  # empty without MGF_DEBUG
    void mgf_assert_zero(const uint8_t *p, int64_t n)  # empty without MGF_DEBUG
    int mgf_check(const mgf_arena *A, int64_t *where)
    void MGF_CHECK_ARENA(const mgf_arena *A, const char *when)  # empty without MGF_DEBUG

    int mgf_pow_forward(double x, double e, double *out)
    double mgf_times_minus_one(double x)
    int mgf_exp_forward(double x, double *out)
    int mgf_log_forward(double x, double *out)
    double mgf_sigmoid(double x)
    double mgf_relu(double x)
    double mgf_tanh(double x)
    double mgf_tanh_slope(double t)
    double mgf_gelu(double x)
    double mgf_activate(int act, double z)
    void mgf_local_backward(mgf_arena *A, int64_t i)
    void mgf_rule(mgf_node *nd, const int32_t *edges, const double *lg, const mgf_node *o)
    int64_t mgf_sweep(mgf_arena *A, uint8_t *seen, int64_t i, int64_t *visited)
    uint32_t mgf_local_grads(const mgf_arena *A, const mgf_node *o, double *out)
    double mgf_neuron_forward(const mgf_node *nd, const int32_t *ch, uint32_t m)
    void mgf_neuron_sweep(mgf_node *nd, const int32_t *edges, const mgf_node *o,
                          uint8_t *seen)
    int MGF_AUX_ACT
    int MGF_AUX_HEAD
    int MGF_AUX_NOBIAS
    bint mgf_is_head(const mgf_node *o)
    bint mgf_has_lg(const mgf_node *o)
    int64_t mgf_lg_len(const double *lg, const mgf_node *o)
    int64_t mgf_layer_outputs_follow(const mgf_arena *A, const int32_t *p, int64_t left)
    int64_t mgf_layer_kids(const mgf_arena *A, const mgf_node *o, int32_t *out)
    void mgf_layer_build(mgf_arena *A, const int32_t *par, const int32_t *inp, int64_t N,
                         int64_t nin, int64_t nout, int act, int bias, double *WT,
                         double *X, double *Z, int32_t *out, int x_given, double *Y)
    void mgf_fused_layer(mgf_arena *A, const int32_t *wb, const int32_t *x,
                         uint32_t nin, uint32_t nout, int act, double *xd, int32_t *out)
