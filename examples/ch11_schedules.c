/* examples/ch11_schedules.c — the chapter's learning-rate schedules:
 * constant, power, exponential, piecewise constant, performance (reduce on
 * plateau) and 1cycle, over SGD with momentum 0.9 on one network trained
 * by nb_fit from the same initial weights. Draws the rate per step (from
 * nb_schedule_lr; the performance schedule's from the rate nb_fit reports
 * each epoch) and the learning curves, and tabulates the final accuracy
 * and loss, mean ± std over seeds.
 *
 *   ch11_schedules [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claims checked: the schedules have the chapter's shapes (power falls to
 * lr0/(1+t/s), exponential to lr0·0.1^(t/s), piecewise steps down at its
 * boundaries, 1cycle rises to max_lr half-way through the cycle and ends
 * far below its start); and, every seed, the best of exponential,
 * piecewise and 1cycle ends with a lower validation loss than the constant
 * rate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define N_SCHED 6
#define MAX_SEEDS 16
#define MAX_EPOCHS 64

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_schedules", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    /* 20 epochs: long enough for the performance schedule's patience of 5 */
    int n_train = a.quick ? 2000 : 20000, n_valid = a.quick ? 1000 : 5000, epochs = a.quick ? 4 : 20;
    int hidden[2] = {a.quick ? 100 : 300, 100}, batch = 32;
    nb_dataset train, valid, test;
    if (!lab_load(&a, n_train, n_valid, 0, false, &train, &valid, &test)) return lab_fail(&a, "data");
    int spe = (n_train + batch - 1) / batch; /* steps per epoch */
    long total = (long)spe * epochs;
    const float lr0 = 0.01f;

    nb_schedule_config sc[N_SCHED];
    sc[0] = nb_schedule_defaults(NB_SCHEDULE_CONSTANT, lr0);
    sc[1] = nb_schedule_defaults(NB_SCHEDULE_POWER, lr0);
    sc[1].steps = (float)total / 4; /* lr0/5 at the end */
    sc[2] = nb_schedule_defaults(NB_SCHEDULE_EXPONENTIAL, lr0);
    sc[2].steps = (float)total; /* lr0/10 at the end */
    sc[3] = nb_schedule_defaults(NB_SCHEDULE_PIECEWISE, lr0);
    sc[3].n_boundaries = 2;
    sc[3].boundaries[0] = (float)(spe * (epochs / 2)), sc[3].boundaries[1] = (float)(spe * (3 * epochs / 4));
    sc[3].values[0] = lr0, sc[3].values[1] = lr0 / 2, sc[3].values[2] = lr0 / 10;
    sc[4] = nb_schedule_defaults(NB_SCHEDULE_PERFORMANCE, lr0);
    sc[4].patience = a.quick ? 0 : 5; /* the book's; quick runs are too short for it */
    sc[5] = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 2 * lr0);
    sc[5].total_steps = total;
    const char *what[N_SCHED] = {"lr0", "steps = total/4, power 1", "steps = total", "", "factor 0.5, patience",
                                 "max_lr 2·lr0, div 10, last 10% annihilation"};

    static double val[N_SCHED][MAX_SEEDS][MAX_EPOCHS], loss[N_SCHED][MAX_SEEDS], vloss[N_SCHED][MAX_SEEDS];
    static double fin[N_SCHED][MAX_SEEDS], epoch_lr[MAX_EPOCHS];
    int cut = 0; /* seeds whose performance schedule lowered the rate before the last epoch */
    for (int k = 0; k < N_SCHED; k++)
        for (int s = 0; s < a.seeds; s++) {
            nb_model *m = nb_model_new(1, (int[]){train.dim}, 42 + (uint64_t)s);
            for (int i = 0; i < 2; i++) {
                nb_layer_spec d = nb_dense_spec(hidden[i], "relu", "he_normal");
                nb_model_add(m, &d);
            }
            nb_layer_spec out = nb_dense_spec(10, NULL, NULL);
            if (!nb_model_add(m, &out)) return lab_fail(&a, "model");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = epochs, o.seed = 42 + (uint64_t)s, o.verbose = 0, o.validation = &valid, o.batch_size = batch;
            o.optimizer = nb_optimizer_defaults(NB_MOMENTUM);
            o.use_schedule = true, o.schedule = sc[k];
            nb_history h;
            if (nb_fit(m, &train, &o, &h) != NB_OK) return lab_fail(&a, nb_schedule_name(sc[k].kind));
            for (int e = 0; e < epochs; e++) val[k][s][e] = h.epochs[e].val_accuracy;
            if (k == 4 && s == 0)
                for (int e = 0; e < epochs; e++) epoch_lr[e] = h.epochs[e].lr;
            if (k == 4) cut += epochs > 1 && h.epochs[epochs - 2].lr < lr0;
            loss[k][s] = h.epochs[epochs - 1].loss, vloss[k][s] = h.epochs[epochs - 1].val_loss;
            fin[k][s] = h.epochs[epochs - 1].val_accuracy;
            fprintf(stderr, "%s seed %d: %.4f loss %.4f\n", nb_schedule_name(sc[k].kind), s, fin[k][s], loss[k][s]);
            nb_history_free(&h), nb_model_free(m);
        }

    /* the rate at every step */
    double *steps = malloc(sizeof(double) * (size_t)total), *lr[N_SCHED];
    for (int k = 0; k < N_SCHED; k++) lr[k] = malloc(sizeof(double) * (size_t)total);
    bool shape = steps != NULL;
    for (int k = 0; shape && k < N_SCHED; k++) {
        nb_schedule *sch = nb_schedule_new(&sc[k]);
        if (!sch || !lr[k]) return lab_fail(&a, "schedule");
        for (long t = 0; t < total; t++) {
            steps[t] = (double)t;
            /* PERFORMANCE moves only when nb_fit observes an epoch: its rate
             * during epoch e is the one reported at the end of epoch e-1 */
            lr[k][t] = k == 4 ? (t < spe ? lr0 : epoch_lr[t / spe - 1]) : nb_schedule_lr(sch, (double)t);
        }
        nb_schedule_free(sch);
    }
    double T = (double)total;
    shape = shape && fabs(lr[0][total - 1] - lr0) < 1e-7;
    shape = shape && fabs(lr[1][total - 1] - lr0 / (1 + (T - 1) / sc[1].steps)) < 1e-6 && lr[1][total - 1] < lr0 / 4.5;
    shape = shape && fabs(lr[2][total - 1] - lr0 * pow(0.1, (T - 1) / T)) < 1e-6;
    long b0 = (long)sc[3].boundaries[0], b1 = (long)sc[3].boundaries[1];
    shape = shape && lr[3][b0 - 1] == lr0 && fabs(lr[3][b0] - lr0 / 2) < 1e-7 && fabs(lr[3][b1] - lr0 / 10) < 1e-7;
    long peak = 0;
    for (long t = 0; t < total; t++)
        if (lr[5][t] > lr[5][peak]) peak = t;
    shape = shape && fabs(lr[5][peak] - 2 * lr0) < 0.02 * 2 * lr0 && fabs((double)peak - 0.45 * T) < 0.02 * T &&
            lr[5][total - 1] < lr[5][0] / 10;

    lab_md md;
    if (!lab_md_open(&md, &a, "Learning-rate schedules")) return 3;
    lab_md_printf(&md,
                  "Dense %d-%d ReLU (He normal) + Dense(10), %d training images, %d validation images, batch %d (%d "
                  "steps per epoch), %d epochs, SGD with momentum 0.9 (1cycle also cycles it, 0.95 → 0.85 → 0.95), "
                  "lr0 = %.2g, the rate set each step (t counts steps), seeds 42..%d.\n\n",
                  hidden[0], hidden[1], n_train, n_valid, batch, spe, epochs, lr0, 41 + a.seeds);
    const char *cols[] = {"schedule", "settings", "lr at the end", "final training loss", "final val. loss",
                          "final val. accuracy", "best epoch's val. accuracy"};
    lab_md_header(&md, 7, cols);
    for (int k = 0; k < N_SCHED; k++) {
        double best[MAX_SEEDS];
        for (int s = 0; s < a.seeds; s++) {
            best[s] = 0;
            for (int e = 0; e < epochs; e++) best[s] = fmax(best[s], val[k][s][e]);
        }
        char set[96], b[4][64];
        if (k == 3)
            snprintf(set, sizeof set, "%.3g until step %ld, %.3g until %ld, then %.3g", sc[3].values[0], b0,
                     sc[3].values[1], b1, sc[3].values[2]);
        else if (k == 4) snprintf(set, sizeof set, "%s %d, on val. loss", what[k], sc[4].patience);
        else snprintf(set, sizeof set, "%s", what[k]);
        lab_md_printf(&md, "| %s | %s | %.3g | %s | %s | %s | %s |\n", nb_schedule_name(sc[k].kind), set,
                      lr[k][total - 1], lab_pm(b[0], 64, loss[k], a.seeds, 4), lab_pm(b[1], 64, vloss[k], a.seeds, 4),
                      lab_pm(b[2], 64, fin[k], a.seeds, 4), lab_pm(b[3], 64, best, a.seeds, 4));
    }
    lab_md_printf(&md,
                  "\nThe performance schedule (patience %d) lowered the rate before the last epoch in %d of %d "
                  "seeds%s.\n\n",
                  sc[4].patience, cut, a.seeds, cut ? "" : ": the run is too short for its patience to matter");
    lab_curve cl[N_SCHED], cv[N_SCHED];
    static double mean_curve[N_SCHED][MAX_EPOCHS], ep[MAX_EPOCHS];
    for (int e = 0; e < MAX_EPOCHS; e++) ep[e] = e + 1;
    for (int k = 0; k < N_SCHED; k++) {
        for (int e = 0; e < epochs; e++) {
            double v[MAX_SEEDS];
            for (int s = 0; s < a.seeds; s++) v[s] = val[k][s][e];
            lab_mean_std(v, a.seeds, &mean_curve[k][e], NULL);
        }
        cl[k] = (lab_curve){nb_schedule_name(sc[k].kind), (int)total, steps, lr[k]};
        cv[k] = (lab_curve){nb_schedule_name(sc[k].kind), epochs, ep, mean_curve[k]};
    }
    lab_fig fl = {"learning rate per step", "step", "learning rate", .logy = true, .key = "outside"};
    lab_md_figure(&md, &a, "ch11_schedules_lr.png", lab_plot(&a, "ch11_schedules_lr.png", &fl, N_SCHED, cl),
                  "learning rate per step");
    lab_fig fv = {"validation accuracy (mean over seeds)", "epoch", "accuracy", .style = "linespoints",
                  .key = "outside"};
    lab_md_figure(&md, &a, "ch11_schedules_val.png", lab_plot(&a, "ch11_schedules_val.png", &fv, N_SCHED, cv),
                  "learning curves per schedule");
    bool ok = shape;
    for (int s = 0; s < a.seeds; s++) ok = ok && fmin(vloss[2][s], fmin(vloss[3][s], vloss[5][s])) < vloss[0][s];
    lab_md_printf(&md,
                  "Claims checked: the rates have the chapter's shapes (power ends at lr0/(1+t/s), exponential at "
                  "lr0·0.1^(t/s), piecewise steps down at its boundaries, 1cycle peaks at max_lr at 45%% of the "
                  "steps and ends below a tenth of its start): **%s**; every seed, the best of exponential, piecewise "
                  "and 1cycle ends with a lower validation loss than the constant rate: **%s**\n",
                  shape ? "holds" : "FAILS", shape ? (ok ? "holds" : "FAILS") : "not checked");
    if (!lab_md_close(&md)) return 3;
    for (int k = 0; k < N_SCHED; k++) free(lr[k]);
    free(steps);
    nb_dataset_free(&train), nb_dataset_free(&valid);
    return ok ? 0 : 1;
}
