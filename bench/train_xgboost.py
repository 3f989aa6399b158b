"""Reference side of bench/train.ts: python xgboost (tree_method=hist) on the same CSV and split.

usage: train_xgboost.py data.csv n_train n_estimators max_depth eta nthread [repeats]
The CSV has a header, feature columns then the 0/1 label last; the first n_train rows train,
the rest are the held-out test rows. Prints one JSON line: seconds (DMatrix + train), auc.
"""
import json
import sys
import time

import numpy as np
import xgboost as xgb


def auc(y, score):
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    yy = y[order]
    pos = yy.sum()
    neg = len(yy) - pos
    return (ranks[yy == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)


def main():
    path, n_train, n_est, depth, eta, nthread = sys.argv[1:7]
    repeats = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    n_train = int(n_train)
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1]
    params = {
        "tree_method": "hist",
        "nthread": int(nthread),
        "max_depth": int(depth),
        "eta": float(eta),
        "objective": "binary:logistic",
        "max_bin": 256,
    }
    # best of `repeats` runs, like the TypeScript side: the machine may be shared
    seconds = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dtrain = xgb.DMatrix(x[:n_train], label=y[:n_train], nthread=int(nthread))
        booster = xgb.train(params, dtrain, num_boost_round=int(n_est))
        seconds = min(seconds, time.perf_counter() - t0)
    p = booster.predict(xgb.DMatrix(x[n_train:]))
    print(json.dumps({"seconds": seconds, "auc": float(auc(y[n_train:], p)), "version": xgb.__version__}))


if __name__ == "__main__":
    main()
