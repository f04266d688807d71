"""The demo's data: a small sample of real KuaiRand requests and the trained model, and its Python replay.

write_sample() picks `users` users (seeded) among those with at least `min_test_requests` test-day
requests and writes every request of theirs, in time order, to ``<dir>/requests.csv``, one row per
candidate, with the upstream ranker's scores; the trained POEM model goes beside it as
``poem_model.safetensors`` and the attribution as README.md. Columns of requests.csv:

  request_id, user_id, time_s (request time, seconds), split (upstream / poem_train / test),
  item_id, p_click, p_long_view, pred_watch_s (the upstream ranker's three scores),
  item_long_view_logit, item_click_logit, item_exposures, user_exposures (the side features: causal
  statistics of the whole log before the request, python/poem_eval/item_stats.py),
  exposed (0/1: shown to the user; the others are popularity-drawn candidates), time_offset_s (the
  exposure's whole seconds after request start), play_time_s, duration_s, click, long_view, like, follow.

replay_sample() replays such a directory through the bound poem.RequestRanker (the Replayer that built
the training data) and scores it with the ranker's C++ forward pass and with poem_ref's PyTorch model;
examples/replay_requests.cpp, the C++ host, must give the same predictions and user histories
(tests/test_replay.py).

Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0.
"""
from pathlib import Path

import numpy as np

from .files import write_text
from . import item_stats
from .data import ATTRIBUTION, SPLIT_NAMES, SPLIT_TEST, EvalData
from .pipeline import Replayer

COLUMNS = ["request_id", "user_id", "time_s", "split", "item_id", "p_click", "p_long_view", "pred_watch_s",
           *item_stats.NAMES, "exposed", "time_offset_s", "play_time_s", "duration_s", "click", "long_view", "like", "follow"]

README = """# A sample of KuaiRand requests for the poem demo

`requests.csv`: every request of {users} users of KuaiRand-Pure ({requests} requests, {test} of them on the
test days; {rows} candidates), in time order, one row per candidate, with the scores of the
evaluation's upstream ranker (python/poem_eval/upstream.py). `poem_model.safetensors`: the POEM model
trained by `make evaluation` (python/poem_eval/train.py, variant `poem`, seed 0; F16 weights). Written by
`python -m poem_eval.run --export-sample`; the columns are described in python/poem_eval/sample.py.
`make demo` replays the requests through the C++ serving path (examples/replay_requests.cpp).

## Attribution and license

{attribution}

The requests, the upstream scores and the model weights here are derived from that data and are
distributed under the same license, CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).
"""


def pick_users(data: EvalData, users: int, min_test_requests: int, seed: int) -> np.ndarray:
    te = data.req_split == SPLIT_TEST
    n_test = np.bincount(data.req_user[te], minlength=int(data.req_user.max()) + 1)
    pool = np.flatnonzero(n_test >= min_test_requests)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=min(users, len(pool)), replace=False))


def write_sample(data: EvalData, scores: np.ndarray, out_dir, model=None, serving_config: str = None,
                 users: int = 24, min_test_requests: int = 5, seed: int = 0) -> dict:
    """Writes requests.csv (and poem_model.safetensors when a model is given, carrying `serving_config`,
    the JSON of the poem.RankerConfig its training data was built with) and README.md."""
    from .adapters import candidate_side, kuairand_stats
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = pick_users(data, users, min_test_requests, seed)
    reqs = np.flatnonzero(np.isin(data.req_user, chosen) & np.isin(data.req_split, list(SPLIT_NAMES))
                          & (data.req_split >= 0))
    lines = [",".join(COLUMNS)]
    n_test = 0
    stats = kuairand_stats(data)
    for r in reqs:  # requests are stored in time order
        sl = data.candidates(r)
        side = candidate_side(data, stats, np.arange(sl.start, sl.stop))
        split = SPLIT_NAMES[int(data.req_split[r])]
        n_test += split == "test"
        for c in range(sl.start, sl.stop):
            lines.append(",".join([
                str(r), str(int(data.req_user[r])), str(int(data.req_time_s[r])), split, str(int(data.cand_item[c])),
                f"{scores[0, c]:.7g}", f"{scores[1, c]:.7g}", f"{scores[2, c]:.7g}",
                *(f"{x:.9g}" for x in side[:, c - sl.start]), str(int(data.cand_exposed[c])),
                str(int(data.cand_time_offset_s[c])), f"{data.cand_play_time_s[c]:.9g}", f"{data.cand_duration_s[c]:.9g}",
                str(int(data.cand_click[c])), str(int(data.cand_long_view[c])), str(int(data.cand_like[c])),
                str(int(data.cand_follow[c]))]))
    write_text(out_dir / "requests.csv", "\n".join(lines) + "\n")
    if model is not None:
        from poem_ref.export import export
        if serving_config is None:
            raise ValueError("write_sample: a model needs the serving config its training data was built with")
        export(model, out_dir / "poem_model.safetensors", dtype="F16",
               extra_metadata={"attribution": ATTRIBUTION, "poem_serving": serving_config})
    info = dict(users=len(chosen), requests=len(reqs), rows=len(lines) - 1, test=n_test)
    write_text(out_dir / "README.md", README.format(attribution=ATTRIBUTION, **info))
    return info


def read_sample(path) -> dict:
    """requests.csv as numpy columns."""
    import pandas as pd
    # round_trip: the exact decimal-to-binary parse (the fast default can be one ulp off), as the C++ host reads
    df = pd.read_csv(Path(path) / "requests.csv", comment="#", float_precision="round_trip")
    if list(df.columns) != COLUMNS:
        raise ValueError(f"{path}/requests.csv: columns {list(df.columns)}, expected {COLUMNS}")
    return {c: df[c].to_numpy() for c in COLUMNS}


def sample_scores(s: dict, a: int, b: int, side: int) -> np.ndarray:
    """The scores a ranker takes for the sample's rows [a, b): the three upstream scores, then the side
    columns when the ranker's config has them (side: 0 or len(item_stats.NAMES))."""
    if side not in (0, len(item_stats.NAMES)):
        raise ValueError(f"the ranker takes {side} side features; the sample has {len(item_stats.NAMES)}")
    names = ["p_click", "p_long_view", "pred_watch_s"] + list(item_stats.NAMES[:side])
    return np.stack([s[c][a:b] for c in names]).astype(np.float32)


def replay_sample(path, model_path=None):
    """Replays a sample directory as serving does, through poem.RequestRanker built from the model file
    alone (its "poem_serving" config), and scores every candidate twice: the ranker's C++ forward pass
    and poem_ref's PyTorch model on the features the ranker built. Returns the sample's columns, both
    predictions (rows x heads, file order) and every user's history bytes (user id -> bytes)."""
    import torch
    import poem
    from poem_ref.export import load
    from poem_ref.model import hash_ids

    s = read_sample(path)
    model_path = Path(model_path or Path(path) / "poem_model.safetensors")
    torch_model = load(model_path).eval()
    vocab = torch_model.config.vocab
    rp = Replayer(model=poem.Model.load(model_path))
    req_id = s["request_id"]
    starts = np.flatnonzero(np.r_[True, req_id[1:] != req_id[:-1]])
    ends = np.r_[starts[1:], len(req_id)]
    heads = len(torch_model.config.heads)
    cpp, ref = np.zeros((len(req_id), heads), np.float32), np.zeros((len(req_id), heads), np.float32)
    t_ = torch.from_numpy
    for a, b in zip(starts, ends):
        u, t = int(s["user_id"][a]), int(s["time_s"][a])
        scores = sample_scores(s, a, b, len(rp.config.side_features))
        req = rp.rank(u, t, s["item_id"][a:b].astype(np.uint64), scores)
        cpp[a:b] = req.scores
        po_ids, po_feats, po_mask = rp.po_arrays(req)
        ch_ids, ch_feats, ch_mask = rp.chrono_arrays(req)
        with torch.no_grad():
            o = torch_model(t_(hash_ids(np.array(req.item_id), vocab))[None], t_(req.candidate_features())[None],
                            t_(hash_ids(ch_ids, vocab))[None], t_(ch_feats[:, :1 + torch_model.config.chrono_feats])[None],
                            t_(ch_mask > 0)[None], t_(hash_ids(po_ids, vocab))[None], t_(po_feats)[None],
                            t_(po_mask > 0)[None])
        ref[a:b] = o[0].numpy()
        e = a + np.flatnonzero(s["exposed"][a:b] > 0)
        exposed = dict(item=s["item_id"][e], time=t + s["time_offset_s"][e].astype(np.int64),
                       play=s["play_time_s"][e], duration=s["duration_s"][e], click=s["click"][e] > 0,
                       like=s["like"][e] > 0, follow=s["follow"][e] > 0)
        rp.record(u, req, exposed)
    histories = {u: h.serialize() for u, h in rp.users.items()}
    return s, cpp, ref, histories
