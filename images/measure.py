"""Measure the built images: sizes, the predictor's cold start, its memory after load and under load.

    python -m images.measure [--model out/serving/word-ocr] [--starts 3] [--load-seconds 20]

Run by `make bench-images` after `make images` and `make run`. The predictor is started as the
InferenceService starts it (images/predictor_container.py); cold start is container start to the
readiness probe's 200 on ``/v1/models/NAME``, the median of ``--starts`` starts. Memory is the
server process's resident set (VmRSS) once ready, and its peak (VmHWM) after the bench's load
(bench/load.py: 8 clients, a mix of v1/v2 word and image requests). Then SIGTERM, as the kubelet
sends it. Writes bench/images-report.json and .md; no test reads them.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from images import predictor_container
from images.build import BUILD_TIMES, image_names, tag
from images.engine import Engine, EngineError, find_engine

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "images-report.json"
log = logging.getLogger("images.measure")


def image_sizes(engine: Engine, registry: str, version: str) -> dict[str, int]:
    sizes = {}
    for name in image_names():
        image = tag(registry, name, version)
        done = engine.run("image", "inspect", "--format", "{{.Size}}", image, check=False, capture=True)
        if done.returncode:
            raise EngineError(f"{image} is not built: run `make images`")
        sizes[name] = int(done.stdout.strip())
    return sizes


def measure_predictor(engine: Engine, image: str, model: Path, port: int, starts: int, load_seconds: float,
                      clients: int) -> dict:
    from bench.load import run_load

    cold, after_load = [], []
    result: dict = {}
    for attempt in range(starts):
        running = predictor_container.start(image, model, port, engine, name=f"word-ocr-measure-{port}")
        try:
            cold.append(running.wait_ready())
            after_load.append(running.memory_kib()["VmRSS"])
            if attempt == starts - 1:
                result["load"] = run_load(running.base_url, clients=clients, duration_s=load_seconds,
                                          model=running.spec.model_name)
                memory = running.memory_kib()
                result["rss_under_load_peak_mib"] = round(memory["VmHWM"] / 1024, 1)
                result["still_answers_after_load"] = predictor_container.http_status(running.model_url) == 200
            code, stop_s = running.stop()
        finally:
            running.remove()
        log.info("start %d: ready in %.1f s, RSS %.0f MiB, stopped in %.1f s (exit %d)", attempt + 1, cold[-1],
                 after_load[-1] / 1024, stop_s, code)
    result.update(
        cold_start_s={"median": round(statistics.median(cold), 2), "all": [round(s, 2) for s in cold]},
        rss_after_load_mib=round(statistics.median(after_load) / 1024, 1),
        sigterm={"exit_code": code, "seconds": round(stop_s, 2), "grace_period_s": running.spec.grace_s},
    )
    return result


def markdown(report: dict) -> str:
    lines = [f"# Container images, measured {report['measured_at']}", "",
             "| image | size (MB) | last build (s) |", "|---|---:|---:|"]
    for name, size in report["image_bytes"].items():
        built = report.get("build_seconds", {}).get(name)
        lines.append(f"| {name} | {size / 1e6:,.0f} | {'' if built is None else f'{built:.0f}'} |")
    p = report["predictor"]
    load = p["load"]
    lines += ["", "| predictor | value |", "|---|---:|",
              f"| cold start, container start to ready (median of {len(p['cold_start_s']['all'])}) | "
              f"{p['cold_start_s']['median']} s |",
              f"| RSS after load | {p['rss_after_load_mib']} MiB |",
              f"| RSS peak under load ({load['clients']} clients, {load['duration_s']} s) | "
              f"{p['rss_under_load_peak_mib']} MiB |",
              f"| requests/s under that load, p50 / p99 | {load['requests_per_s']}, {load['p50_ms']} / "
              f"{load['p99_ms']} ms |",
              f"| errors under load | {load['errors']} |",
              f"| SIGTERM to exit (grace period {p['sigterm']['grace_period_s']} s) | {p['sigterm']['seconds']} s, "
              f"exit {p['sigterm']['exit_code']} |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from components.images import REGISTRY, VERSION

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per request from the load's HTTP client would bury the report.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m images.measure", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("out/serving/word-ocr"),
                        help="published model folder (`make run` writes it; default: %(default)s)")
    parser.add_argument("--port", type=int, default=18090, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--starts", type=int, default=3, help="cold starts to take the median of (default: 3)")
    parser.add_argument("--load-seconds", type=float, default=20.0, help="(default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPORT, help="default: %(default)s")
    args = parser.parse_args(argv)

    engine = find_engine(need_run=True)
    report = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "engine": engine.name,
              "image_bytes": image_sizes(engine, REGISTRY, VERSION)}
    if BUILD_TIMES.exists():
        report["build_seconds"] = json.loads(BUILD_TIMES.read_text())
    report["predictor"] = measure_predictor(engine, tag(REGISTRY, "predictor", VERSION), args.model, args.port,
                                            args.starts, args.load_seconds, args.clients)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    log.info("wrote %s and %s", args.out, args.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
