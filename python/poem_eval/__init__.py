"""poem_eval: the data foundation of poem's real-data evaluation (KuaiRand-Pure).

- :mod:`poem_eval.data`: the exposure log as requests (5-minute sessions) with candidates (exposed items
  plus popularity-drawn unexposed items), day splits, per-user engagement logs; cached as .npz.
- :mod:`poem_eval.upstream`: the upstream multi-task ranker (PyTorch) that gives every candidate its
  K = 3 ranking scores (p_click, p_long_view, pred_watch_time_s), trained on the first days only.
- :mod:`poem_eval.metrics`: AUC, per-user GAUC, watch-time error and the item-rate floor baseline.

Command line: ``PYTHONPATH=python /usr/bin/python3 -m poem_eval.data --summary [--quick]``.

Data attribution: everything derived here comes from KuaiRand (Gao et al., "KuaiRand: An Unbiased
Sequential Recommendation Dataset with Randomly Exposed Videos", CIKM 2022, https://kuairand.com),
licensed CC BY-SA 4.0; derived files carry the same note and license.
"""
import importlib

__all__ = ["EvalConfig", "EvalData", "build_eval_data", "load_eval_data",
           "UpstreamConfig", "build_upstream_scores", "data", "upstream", "metrics"]

_LAZY = {"EvalConfig": "data", "EvalData": "data", "build_eval_data": "data", "load_eval_data": "data",
         "UpstreamConfig": "upstream", "build_upstream_scores": "upstream"}


def __getattr__(name):
    # Lazy imports: `python -m poem_eval.data` runs cleanly, and importing the package does not pull
    # in torch until the upstream ranker is used.
    if name in ("data", "upstream", "metrics"):
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
