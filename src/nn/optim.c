/* optim.c - optimisation (attn/nn.h): one AdamW step on a tensor
 * (torch.optim.AdamW semantics), global gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_) and learning-rate schedules.
 *
 * The update arithmetic is float32 elementwise like torch's single-tensor
 * path; the bias corrections and the gradient norm are computed in double.
 * attn__nn_update is the whole update of a model's parameters, the one
 * loop the models share.
 */
#include "nn_private.h"

#include <math.h>

#define PI 3.14159265358979323846

static size_t fbytes(int64_t count) { return (size_t)count * sizeof(float); }

attn_nn_adamw attn_nn_adamw_default(void)
{
    attn_nn_adamw o = {1e-3, 0.9, 0.999, 1e-8, 1e-2};
    return o;
}

/* ATTN_BAD_PARAM unless lo <= v < hi (hi_open) or lo <= v <= hi, v finite. */
static attn_status range_check(const char *fn, const char *name, double v, double lo,
                               double hi, int hi_open)
{
    int ok = isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi);
    if (!ok)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument '%s' is %g; it must be in [%g, %g%s",
                         fn, name, v, lo, hi, hi_open ? ")" : "]");
    return ATTN_OK;
}

static attn_status adamw_check(const char *fn, const attn_nn_adamw *opt, int64_t step,
                               int decay)
{
    attn_status s;
    ATTN__NOT_NULL(fn, opt);
    if ((s = range_check(fn, "opt->lr", opt->lr, 0.0, INFINITY, 1)) != ATTN_OK ||
        (s = range_check(fn, "opt->beta1", opt->beta1, 0.0, 1.0, 1)) != ATTN_OK ||
        (s = range_check(fn, "opt->beta2", opt->beta2, 0.0, 1.0, 1)) != ATTN_OK ||
        (s = range_check(fn, "opt->eps", opt->eps, 0.0, INFINITY, 1)) != ATTN_OK ||
        (s = range_check(fn, "opt->weight_decay", opt->weight_decay, 0.0, INFINITY, 1)) !=
            ATTN_OK)
        return s;
    if (step < 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'step' is %lld; steps count from 1", fn,
                         (long long)step);
    if (decay != 0 && decay != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'decay' is %d; it must be 0 or 1", fn,
                         decay);
    return ATTN_OK;
}

attn_status attn_nn_adamw_step(const attn_nn_adamw *opt, int64_t step, float *param,
                               const float *grad, float *m, float *v, int64_t count, int decay)
{
    attn_status s = adamw_check(__func__, opt, step, decay);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, param);
    ATTN__NOT_NULL(__func__, grad);
    ATTN__NOT_NULL(__func__, m);
    ATTN__NOT_NULL(__func__, v);
    ATTN__DIM(__func__, count);
    if (count > ATTN__MAX_ELEMS)
        return attn_fail(ATTN_OVERFLOW, "%s: argument 'count' (%lld) is too large", __func__,
                         (long long)count);
    attn__span sp[] = {{"param", param, fbytes(count)},
                       {"m", m, fbytes(count)},
                       {"v", v, fbytes(count)},
                       {"grad", grad, fbytes(count)}};
    if ((s = attn__disjoint(__func__, sp, 4, 3)) != ATTN_OK) return s;

    const float shrink = decay ? (float)(1.0 - opt->lr * opt->weight_decay) : 1.0f;
    const float b1 = (float)opt->beta1, w1 = (float)(1.0 - opt->beta1);
    const float b2 = (float)opt->beta2, w2 = (float)(1.0 - opt->beta2);
    const double bc1 = 1.0 - pow(opt->beta1, (double)step);
    const double bc2 = 1.0 - pow(opt->beta2, (double)step);
    const float step_size = (float)(opt->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)opt->eps;
    for (int64_t i = 0; i < count; i++) {
        float g = grad[i];
        m[i] = b1 * m[i] + w1 * g;
        v[i] = b2 * v[i] + w2 * (g * g);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        param[i] = param[i] * shrink - step_size * (m[i] / denom);
    }
    return ATTN_OK;
}

static attn_status clip_check(const char *fn, float *const *bufs, const int64_t *counts,
                              int n_bufs, double max_norm)
{
    ATTN__DIM(fn, n_bufs);
    if (n_bufs > 0) {
        ATTN__NOT_NULL(fn, bufs);
        ATTN__NOT_NULL(fn, counts);
    }
    if (!(max_norm > 0.0) || !isfinite(max_norm))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'max_norm' is %g; it must be finite and > 0",
                         fn, max_norm);
    for (int i = 0; i < n_bufs; i++) {
        if (counts[i] < 0 || counts[i] > ATTN__MAX_ELEMS)
            return attn_fail(counts[i] < 0 ? ATTN_BAD_DIM : ATTN_OVERFLOW,
                             "%s: argument 'counts[%d]' is %lld", fn, i, (long long)counts[i]);
        if (bufs[i] == NULL && counts[i] > 0)
            return attn_fail(ATTN_NULL_ARG, "%s: argument 'bufs[%d]' is NULL", fn, i);
    }
    for (int i = 0; i < n_bufs; i++) /* a buffer seen twice would be scaled twice */
        for (int j = i + 1; j < n_bufs; j++)
            if (attn__overlap(bufs[i], fbytes(counts[i]), bufs[j], fbytes(counts[j])))
                return attn_fail(ATTN_OVERLAP, "%s: argument 'bufs[%d]' overlaps 'bufs[%d]'",
                              fn, i, j);
    return ATTN_OK;
}

/* sum of x[i]^2 in double, 8 partial sums. */
static double sum_squares(const float *x, int64_t count)
{
    double acc[8] = {0}, s = 0.0;
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)x[i + k] * x[i + k];
    for (; i < count; i++) s += (double)x[i] * x[i];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

attn_status attn_nn_clip_grad_norm(float *const *bufs, const int64_t *counts, int n_bufs,
                                   double max_norm, double *norm)
{
    attn_status s = clip_check(__func__, bufs, counts, n_bufs, max_norm);
    if (s != ATTN_OK) return s;
    ATTN__NOT_NULL(__func__, norm);
    double sq = 0.0;
    for (int i = 0; i < n_bufs; i++) sq += sum_squares(bufs[i], counts[i]);
    double total = sqrt(sq);
    /* torch: coef = max_norm / (norm + 1e-6), clamped to at most 1 (a NaN
     * norm gives a NaN coefficient, as in torch). */
    double coef = max_norm / (total + 1e-6);
    if (!(coef >= 1.0)) {
        float c = (float)coef;
        for (int i = 0; i < n_bufs; i++)
            for (int64_t k = 0; k < counts[i]; k++) bufs[i][k] *= c;
    }
    *norm = total;
    return ATTN_OK;
}

attn_status attn__nn_update(const char *fn, const attn__nn_paramset *ps,
                            const attn_nn_adamw *opt, double lr, double clip, int64_t *steps,
                            double *grad_norm)
{
    if (!isfinite(lr) || lr < 0 || !isfinite(clip) || clip < 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: arguments 'lr' and 'clip' must be finite and >= 0",
                         fn);
    double norm = 0;
    attn_status st = ATTN_OK;
    if (clip > 0)
        st = attn_nn_clip_grad_norm(&ps->grads, &ps->n_params, 1, clip, &norm);
    else /* no clipping: only the norm, for the report */
        norm = sqrt(sum_squares(ps->grads, ps->n_params));
    if (st != ATTN_OK) return st;
    if (grad_norm) *grad_norm = norm;
    attn_nn_adamw o = *opt;
    o.lr = lr;
    ++*steps;
    for (int64_t t = 0; t < ps->n && st == ATTN_OK; t++) {
        const attn_nn_param *p = &ps->tensors[t];
        size_t off = (size_t)(p->value - ps->params);
        st = attn_nn_adamw_step(&o, *steps, p->value, p->grad, ps->adam_m + off, ps->adam_v + off,
                                p->numel, p->decay);
    }
    return st;
}

/* Schedules. warmup = 0 means no warm-up; COSINE reaches min_lr at step
 * total and stays there (at once if total <= warmup); INVSQRT uses
 * max(warmup, 1) so warmup = 0 is 1/sqrt(step). */
static double schedule(attn_nn_schedule kind, int64_t step, int64_t warmup, int64_t total,
                       double base_lr, double min_lr)
{
    if (step < warmup) return base_lr * (double)step / (double)warmup;
    if (kind == ATTN_NN_SCHEDULE_CONSTANT) return base_lr;
    if (kind == ATTN_NN_SCHEDULE_INVSQRT)
        return base_lr * sqrt((double)(warmup > 1 ? warmup : 1) / (double)step);
    int64_t span = total - warmup; /* cosine steps after warm-up */
    double progress = span > 0 ? (double)(step - warmup) / (double)span : (step > warmup);
    if (progress > 1.0) progress = 1.0;
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + cos(PI * progress));
}

attn_status attn_nn_lr(attn_nn_schedule kind, int64_t step, int64_t warmup, int64_t total,
                       double base_lr, double min_lr, double *lr)
{
    const char *fn = "attn_nn_lr";
    ATTN__NOT_NULL(fn, lr);
    if (kind != ATTN_NN_SCHEDULE_CONSTANT && kind != ATTN_NN_SCHEDULE_COSINE &&
        kind != ATTN_NN_SCHEDULE_INVSQRT)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'kind' is %d; it is not a schedule", fn,
                         (int)kind);
    if (step < 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'step' is %lld; steps count from 1", fn,
                         (long long)step);
    if (warmup < 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'warmup' is %lld; it must be >= 0", fn,
                         (long long)warmup);
    if (!isfinite(base_lr) || base_lr < 0.0)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'base_lr' is %g; it must be finite and >= 0",
                         fn, base_lr);
    if (!isfinite(min_lr) || min_lr < 0.0)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'min_lr' is %g; it must be finite and >= 0",
                         fn, min_lr);
    *lr = schedule(kind, step, warmup, total, base_lr, min_lr);
    return ATTN_OK;
}
