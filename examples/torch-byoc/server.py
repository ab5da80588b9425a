"""A SageMaker-style byoc server for the BERT-base encoder, with batch support.

The container contract: GET /ping, POST /invocations, on $SAGEMAKER_BIND_TO_PORT.
An invocation is {"inputs": "text"} (or a list of texts) and is answered
{"embedding": [...]} (or {"embeddings": [[...], ...]}). A batch in Junction's
batch contract (docs/batching.md) is {"instances": [invocation, ...]}, answered
{"predictions": [answer, ...], "errors": [...]}: every item is answered as it
would be alone, in one forward pass for the whole batch. Calls run on the GPU
one at a time; Junction gathers concurrent requests into batches in front.

Run under Junction as a byoc model:
  command: python3, args: [examples/torch-byoc/server.py]
"""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import model as encoder

MODEL, DEVICE = encoder.load()
GPU = threading.Lock()  # one forward pass at a time
MAX_ITEMS = 1024


def texts_of(item):
    """Returns (texts, is_list) for one invocation body, or raises ValueError."""
    if not isinstance(item, dict) or "inputs" not in item:
        raise ValueError('send {"inputs": "text"} or {"inputs": ["text", ...]}')
    inputs = item["inputs"]
    if isinstance(inputs, str) and inputs.strip():
        return [inputs], False
    if isinstance(inputs, list) and inputs and all(isinstance(t, str) and t.strip() for t in inputs):
        return inputs, True
    raise ValueError("inputs must be a non-empty text or a non-empty list of non-empty texts")


def answer(vectors, is_list):
    return {"embeddings": vectors} if is_list else {"embedding": vectors[0]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, doc):
        body = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self.reply(200, b"")
        else:
            self.reply(404, b"not found")

    def do_POST(self):
        if self.path != "/invocations":
            return self.reply(404, b"not found")
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        except ValueError as e:
            return self.reply(400, f"the body is not JSON: {e}".encode())
        if isinstance(body, dict) and "instances" in body:
            return self.batch(body["instances"])
        try:
            texts, is_list = texts_of(body)
        except ValueError as e:
            return self.reply(400, str(e).encode())
        with GPU:
            vectors = encoder.encode(MODEL, DEVICE, texts)
        self.reply(200, answer(vectors, is_list))

    def batch(self, items):
        if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
            return self.reply(400, f"instances must be a list of 1 to {MAX_ITEMS} invocations".encode())
        texts, spans, errors = [], [], [None] * len(items)
        for i, item in enumerate(items):
            try:
                t, is_list = texts_of(item)
            except ValueError as e:
                errors[i] = {"status": 400, "message": str(e)}
                spans.append(None)
                continue
            spans.append((len(texts), len(texts) + len(t), is_list))
            texts.extend(t)
        vectors = []
        if texts:
            with GPU:
                vectors = encoder.encode(MODEL, DEVICE, texts)
        preds = [None if s is None else answer(vectors[s[0]:s[1]], s[2]) for s in spans]
        doc = {"predictions": preds}
        if any(errors):
            doc["errors"] = errors
        self.reply(200, doc)


def main():
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT") or os.environ.get("PORT") or 8080)
    encoder.encode(MODEL, DEVICE, ["warm up"] * 8)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"torch-byoc listening on 127.0.0.1:{port} ({DEVICE})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
