#!/usr/bin/env python3
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Benchmark a deployed vLLM endpoint: output tokens/s and time to first token (TTFT).

    vllm_bench.py --url http://127.0.0.1:8000 --model NAME [--num-prompts 32] [--concurrency 4]
                  [--input-len 32] [--output-len 64] [--env-file F] [--json OUT]

Like `vllm bench serve` with random prompts: N streaming /v1/completions requests with
ignore_eos (so each returns exactly --output-len tokens), at most --concurrency at a time.
Reports request throughput, output tokens/s, TTFT and TPOT (mean/median/p99) as one JSON
object. Standard library only; the API key comes from the unit's environment file.
"""

import argparse
import json
import random
import statistics
import sys
import threading
import time
import urllib.request

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def api_key(env_file):
    if not env_file:
        return None
    try:
        with open(env_file) as f:
            for line in f:
                if line.startswith("VLLM_API_KEY="):
                    value = line.split("=", 1)[1].strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    return value or None
    except OSError:
        return None
    return None


def one_request(url, key, model, prompt, output_len, timeout):
    body = {"model": model, "prompt": prompt, "max_tokens": output_len, "temperature": 0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(), headers=headers)
    t0 = time.perf_counter()
    ttft, chunks, tokens, last = None, 0, None, t0
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            msg = json.loads(data)
            if msg.get("usage"):
                tokens = msg["usage"].get("completion_tokens")
            if any(c.get("text") for c in msg.get("choices") or []):
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - t0
                chunks += 1
                last = now
    latency = time.perf_counter() - t0
    tokens = tokens if tokens is not None else chunks
    tpot = (last - t0 - ttft) / (tokens - 1) if ttft is not None and tokens > 1 else None
    return {"ttft": ttft, "latency": latency, "tokens": tokens, "tpot": tpot}


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--num-prompts", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--input-len", type=int, default=32, help="words per prompt")
    ap.add_argument("--output-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--env-file")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args()

    rnd = random.Random(args.seed)
    prompts = [" ".join(rnd.choice(WORDS) for dummy in range(args.input_len)) for dummy in range(args.num_prompts)]
    key = api_key(args.env_file)
    url = args.url.rstrip("/")
    results, errors, lock = [], [], threading.Lock()
    queue = list(enumerate(prompts))

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                dummy, prompt = queue.pop(0)
            try:
                res = one_request(url, key, args.model, prompt, args.output_len, args.timeout)
                with lock:
                    results.append(res)
            except Exception as exc:  # counted and reported, the run goes on
                with lock:
                    errors.append("%s: %s" % (type(exc).__name__, exc))

    # One warm-up request, not counted (first-request compilation would skew TTFT).
    one_request(url, key, args.model, prompts[0], 4, args.timeout)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for dummy in range(max(1, args.concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration = time.perf_counter() - t0

    ttfts = [r["ttft"] * 1000 for r in results if r["ttft"] is not None]
    tpots = [r["tpot"] * 1000 for r in results if r["tpot"] is not None]
    out_tokens = sum(r["tokens"] for r in results)
    summary = {
        "url": url, "model": args.model, "num_prompts": args.num_prompts, "concurrency": args.concurrency,
        "input_words": args.input_len, "output_len": args.output_len,
        "completed": len(results), "failed": len(errors), "errors": errors[:5],
        "duration_s": round(duration, 3),
        "request_throughput_per_s": round(len(results) / duration, 3) if duration else None,
        "output_tokens": out_tokens,
        "output_tokens_per_s": round(out_tokens / duration, 2) if duration else None,
        "ttft_ms": {"mean": round(statistics.mean(ttfts), 1) if ttfts else None,
                    "median": round(statistics.median(ttfts), 1) if ttfts else None,
                    "p99": round(pct(ttfts, 99), 1) if ttfts else None},
        "tpot_ms": {"mean": round(statistics.mean(tpots), 2) if tpots else None,
                    "median": round(statistics.median(tpots), 2) if tpots else None,
                    "p99": round(pct(tpots, 99), 2) if tpots else None},
    }
    text = json.dumps(summary)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0 if results and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
