"""The replay as a Dask job: requests partitioned by user, one task per partition, a manifest.

    PYTHONPATH=build/dispatch/python:python /usr/bin/python3 -m poem_eval.distributed \\
        --sample data/kuairand_sample --partitions 8 --out /tmp/replay [--scheduler tcp://host:8786]

Layout of `out` (docs/scale_out.md):
  inputs/shared.npz          the item graph's bytes, the popularity weights, n_items, the configs
  inputs/part-00003.npz      partition 3's requests and engagements (schema.py's columns, prefixed
                             "requests." and "engagements."): the users u with partition_of(u) == 3,
                             their requests in input order (so in time order per user)
  part-00003.npz             partition 3's output (schema.OUTPUT), written by its task
  manifest.json              the complete partitions: file, request/row/pair counts, sha256; and
                             "complete": true once every partition is in

Each task runs pipeline.replay(), the single-process code, on its partition with the whole input's
graph and popularity. A user's output depends on that user's requests alone (seeds from (seed, user,
time, ordinal)), so the union of the partitions equals the single-process output after
schema.canonical(), for any number of partitions and workers. Every file is written to a temporary name
and renamed (files.py); the manifest is rewritten (atomically) after each partition completes, so it
never lists a partition whose file is not whole. A worker that dies mid-partition leaves at most a
temporary file: the scheduler runs the task again on another worker and the rerun writes the same bytes.
"""
import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .files import write_npz, write_text
from .pipeline import PipelineConfig, replay, replay_globals
from .schema import OUTPUT, ReplayInput, concat_outputs, partition_of

MANIFEST_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_partitions(inp: ReplayInput, out_dir, n_partitions: int, cfg: PipelineConfig = None,
                     config_json: str = None) -> list:
    """The inputs of the job under out_dir/inputs; returns the partitions' input paths."""
    if inp.score_items is not None:  # a Python callable: it cannot be written beside the columns
        raise ValueError("distributed replay: the input's score_items does not travel to the workers' files; "
                         "replay it in one process (pipeline.replay), or drop it (the negatives' scores are then NaN)")
    cfg = cfg or PipelineConfig()
    d = Path(out_dir) / "inputs"
    shared = replay_globals(inp)
    write_npz(d / "shared.npz", {"graph": np.frombuffer(shared["graph"], np.uint8),
                                 "popularity": shared["popularity"], "n_items": np.int64(inp.n_items),
                                 "pipeline_config": json.dumps(asdict(cfg)),
                                 "ranker_config": config_json or ""})
    part = partition_of(inp.requests["user"], n_partitions)
    paths = []
    for p in range(n_partitions):
        sub = inp.take(np.flatnonzero(part == p))  # flatnonzero keeps the input's order
        cols = {f"requests.{k}": v for k, v in sub.requests.items()}
        cols.update({f"engagements.{k}": v for k, v in sub.engagements.items()})
        paths.append(d / f"part-{p:05d}.npz")
        write_npz(paths[-1], cols)
    return paths


def replay_partition(in_path: str, out_path: str) -> dict:
    """One task: replays a partition's input file into its output file (atomically); returns what the
    manifest records of it. Runs on a worker; reads shared.npz beside its input."""
    t0 = time.perf_counter()
    in_path, out_path = Path(in_path), Path(out_path)
    with np.load(in_path.parent / "shared.npz") as z:
        shared = {"graph": z["graph"].tobytes(), "popularity": z["popularity"]}
        n_items = int(z["n_items"])
        cfg = PipelineConfig(**json.loads(str(z["pipeline_config"])))
        config_json = str(z["ranker_config"]) or None
    with np.load(in_path) as z:
        cols = {k: z[k] for k in z.files}
    inp = ReplayInput.from_columns({k.split(".", 1)[1]: v for k, v in cols.items() if k.startswith("requests.")},
                                   {k.split(".", 1)[1]: v for k, v in cols.items() if k.startswith("engagements.")},
                                   n_items=n_items)
    out = replay(inp, cfg, config_json=config_json, shared=shared)
    rss = _rss_mib()  # the partition's input and output are both still held here
    write_npz(out_path, {k: out[k] for k in OUTPUT})
    return {"file": out_path.name, "input": in_path.name, "requests_in": inp.n_requests,
            "requests": len(out["request_id"]), "rows": int(out["row_offsets"][-1]),
            "pairs": int(out["pair_offsets"][-1]), "counts": out["counts"], "sha256": _sha256(out_path),
            "seconds": round(time.perf_counter() - t0, 3),
            "rss_mib": rss}


def _rss_mib() -> float:
    """The worker's resident memory now (Linux), else its peak: the peak of a worker process spans
    every task it ran, and the process it was started from."""
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20, 1)
    except OSError:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _write_manifest(out_dir: Path, done: dict, n_partitions: int) -> dict:
    m = {"version": MANIFEST_VERSION, "n_partitions": n_partitions, "complete": len(done) == n_partitions,
         "partitions": [dict(partition=p, **done[p]) for p in sorted(done)]}
    write_text(out_dir / "manifest.json", json.dumps(m, indent=1, sort_keys=True) + "\n")
    return m


def run(inp: ReplayInput, out_dir, n_partitions: int, client, cfg: PipelineConfig = None,
        config_json: str = None, task=replay_partition, retries: int = 1) -> dict:
    """Replays `inp` on the Dask `client` in `n_partitions` partitions; returns the manifest. A task that
    raises is retried `retries` times; one whose worker dies is rerun by the scheduler (up to its
    distributed.scheduler.allowed-failures). If a partition still fails, the manifest keeps the
    complete ones ("complete": false) and the error is raised."""
    from distributed import as_completed

    out_dir = Path(out_dir)
    inputs = write_partitions(inp, out_dir, n_partitions, cfg, config_json)
    token = hashlib.sha1(str(out_dir.resolve()).encode() + str(time.time_ns()).encode()).hexdigest()[:8]
    futures = {client.submit(task, str(path), str(out_dir / f"part-{p:05d}.npz"), key=f"poem-replay-{token}-{p}",
                             retries=retries, pure=False): p
               for p, path in enumerate(inputs)}
    done, error = {}, None
    _write_manifest(out_dir, done, n_partitions)  # a stale manifest of an earlier run never survives
    for fut in as_completed(futures):
        p = futures[fut]
        try:
            done[p] = fut.result()
        except Exception as e:  # noqa: BLE001 - recorded, the other partitions still finish
            error = error or (p, e)
            continue
        _write_manifest(out_dir, done, n_partitions)
    for tmp in out_dir.glob("*.tmp*"):  # left by a worker killed while writing; every task has ended
        tmp.unlink()
    if error is not None:
        raise RuntimeError(f"replay partition {error[0]} failed: {error[1]!r}") from error[1]
    return _write_manifest(out_dir, done, n_partitions)


def load(out_dir, allow_partial: bool = False) -> dict:
    """The job's output: the manifest's partitions, each checked against its sha256, concatenated in
    partition order (schema.canonical() gives the single-process order)."""
    out_dir = Path(out_dir)
    m = json.loads((out_dir / "manifest.json").read_text())
    if not m["complete"] and not allow_partial:
        raise ValueError(f"{out_dir}/manifest.json: {len(m['partitions'])} of {m['n_partitions']} partitions "
                         "complete")
    parts = []
    for e in m["partitions"]:
        path = out_dir / e["file"]
        if _sha256(path) != e["sha256"]:
            raise ValueError(f"{path}: sha256 differs from the manifest's")
        with np.load(path, allow_pickle=False) as z:
            parts.append({k: z[k] for k in OUTPUT})
    return concat_outputs(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m poem_eval.distributed", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--sample", help="a sample directory (requests.csv, as data/kuairand_sample)")
    src.add_argument("--quick", action="store_true", help="the evaluation's quick split (KuaiRand)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--scheduler", help="address of a running scheduler (tcp://host:8786); default: a LocalCluster")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers (one thread each)")
    args = ap.parse_args(argv)
    if args.sample:
        from .adapters import from_sample
        inp = from_sample(args.sample)
    else:
        from .adapters import from_eval_data
        from .data import EvalConfig, build_eval_data
        from .upstream import build_upstream_scores
        data = build_eval_data(EvalConfig(quick=True), show_progress=False)
        inp = from_eval_data(data, build_upstream_scores(data, show_progress=False).scores)
    from distributed import Client, LocalCluster
    cluster = None if args.scheduler else LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
    with Client(args.scheduler or cluster) as client:
        t0 = time.perf_counter()
        m = run(inp, args.out, args.partitions, client)
        dt = time.perf_counter() - t0
    if cluster is not None:
        cluster.close()
    n = sum(e["requests_in"] for e in m["partitions"])
    busy = sum(e["seconds"] for e in m["partitions"])
    print(f"{n} requests in {dt:.1f} s (inputs written and replayed): {n / dt:.0f} requests/s; "
          f"{args.partitions} partitions, {busy:.1f} task-seconds ({n / busy:.0f} requests/s per busy worker), "
          f"largest worker RSS after a partition {max(e['rss_mib'] for e in m['partitions'])} MiB; "
          f"manifest {args.out}/manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
