"""Measures the encoder offline (batched forward passes) and served through Junction.

  python3 bench.py offline --batch 256 --seconds 20
  python3 bench.py served --url http://127.0.0.1:9470/endpoints/bert/invocations \
      --key $JUNCTION_KEY --clients 512 --seconds 20

Both print one JSON line: {"mode", "per_second", ...}. Run them in one session on
the same GPU and report served / offline.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse


def text(i):
    words = ["the", "invoice", "was", "charged", "twice", "and", "the", "api", "returns", "errors", "again"]
    return " ".join(words[(i + k) % len(words)] for k in range(100)) + f" {i}"


def offline(args):
    import torch

    import model as encoder

    m, device = encoder.load()
    batch = [text(i) for i in range(args.batch)]
    ids, mask = encoder.tokenize(batch, device)
    with torch.inference_mode():
        for _ in range(3):
            m(ids, mask)
        if device == "cuda":
            torch.cuda.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            m(ids, mask)
            n += len(batch)
        if device == "cuda":
            torch.cuda.synchronize()
    took = time.perf_counter() - start
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(json.dumps({"mode": "offline", "device": gpu, "batch": args.batch, "sequences": n, "seconds": round(took, 2),
                      "per_second": round(n / took, 1)}))


def served(args):
    u = urllib.parse.urlparse(args.url)
    stop = time.perf_counter() + args.seconds
    counts, errors = [0] * args.clients, [0] * args.clients

    def client(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + args.key}
        i = k
        while time.perf_counter() < stop:
            conn.request("POST", u.path, json.dumps({"inputs": text(i)}), headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                counts[k] += 1
            else:
                errors[k] += 1
            i += args.clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    print(json.dumps({"mode": "served", "clients": args.clients, "requests": sum(counts), "errors": sum(errors),
                      "seconds": round(took, 2), "per_second": round(sum(counts) / took, 1)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    o = sub.add_parser("offline")
    o.add_argument("--batch", type=int, default=256)
    o.add_argument("--seconds", type=float, default=20)
    s = sub.add_parser("served")
    s.add_argument("--url", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--clients", type=int, default=512)
    s.add_argument("--seconds", type=float, default=20)
    args = p.parse_args()
    offline(args) if args.mode == "offline" else served(args)


if __name__ == "__main__":
    main()
