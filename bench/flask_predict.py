"""The "traditional deployment" side of bench/predict.ts: a Flask + xgboost microservice.

    python3 flask_predict.py train <dsn> <table> <model_out> <n_estimators> <max_depth> <nthread>
        reads f1..f20 and label of <table> with psycopg2, trains python xgboost
        (tree_method hist, binary:logistic, eta 0.3, the same trees and depth as our model),
        saves the booster to <model_out> and prints one JSON line {seconds, rows, version}.

    python3 flask_predict.py serve <port>
        Flask's threaded development server (used only when gunicorn is not installed).

    gunicorn ... flask_predict:app
        the production-style way bench/predict.ts runs it (gthread workers).

Environment of the server: PREDICT_DSN (libpq URI), PREDICT_TABLE, PREDICT_MODEL (model file),
PREDICT_FEATURES (comma-separated feature columns, default f1..f20).

GET or POST /predict/<id>: fetches the row's features from PostgreSQL by primary key (one
autocommit SELECT on this thread's own connection), predicts with the booster
(inplace_predict, nthread 1: the fastest single-row call xgboost offers, no DMatrix) and
answers {"id", "prediction", "probability"}. GET /ready answers once the model is loaded.
"""
import json
import os
import sys
import threading
import time

import numpy as np
import psycopg2
import xgboost as xgb


def feature_columns():
    cols = os.environ.get("PREDICT_FEATURES")
    return cols.split(",") if cols else [f"f{i}" for i in range(1, 21)]


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def train(dsn, table, out, n_estimators, max_depth, nthread):
    cols = feature_columns()
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"select {', '.join(quote_ident(c) for c in cols)}, label from {quote_ident(table)} order by id")
            rows = cur.fetchall()
    finally:
        conn.close()
    data = np.asarray(rows, dtype=np.float64)
    x, y = data[:, :-1], data[:, -1]
    params = {
        "tree_method": "hist",
        "nthread": int(nthread),
        "max_depth": int(max_depth),
        "eta": 0.3,
        "objective": "binary:logistic",
        "max_bin": 256,
    }
    t0 = time.perf_counter()
    booster = xgb.train(params, xgb.DMatrix(x, label=y, nthread=int(nthread)), num_boost_round=int(n_estimators))
    seconds = time.perf_counter() - t0
    booster.save_model(out)
    print(json.dumps({"seconds": seconds, "rows": len(rows), "version": xgb.__version__}))


def create_app():
    from flask import Flask, jsonify

    booster = xgb.Booster()
    booster.load_model(os.environ["PREDICT_MODEL"])
    booster.set_param({"nthread": 1})
    dsn = os.environ["PREDICT_DSN"]
    cols = feature_columns()
    query = f"select {', '.join(quote_ident(c) for c in cols)} from {quote_ident(os.environ['PREDICT_TABLE'])} where id = %s"
    local = threading.local()

    def connection():
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg2.connect(dsn)
            conn.autocommit = True  # one statement, its own transaction; never idle in transaction
            local.conn = conn
        return conn

    app = Flask(__name__)

    @app.route("/ready")
    def ready():
        return jsonify({"status": "ready"})

    @app.route("/predict/<int:row_id>", methods=["GET", "POST"])
    def predict(row_id):
        with connection().cursor() as cur:
            cur.execute(query, (row_id,))
            row = cur.fetchone()
        if row is None:
            return jsonify({"message": f"row {row_id} not found"}), 404
        x = np.asarray([row], dtype=np.float32)
        p = float(booster.inplace_predict(x)[0])
        return jsonify({"id": row_id, "prediction": 1 if p > 0.5 else 0, "probability": p})

    return app


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "train":
        train(*sys.argv[2:8])
    elif len(sys.argv) >= 3 and sys.argv[1] == "serve":
        create_app().run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
else:
    # imported by gunicorn (flask_predict:app)
    app = create_app() if "PREDICT_MODEL" in os.environ else None
