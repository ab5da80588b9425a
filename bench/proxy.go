package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The harness starts the reference proxy by running its own executable
// with these variables set.
const (
	proxyUpstreamEnv = "JUNCTION_BENCH_PROXY_UPSTREAM"
	proxyAddrEnv     = "JUNCTION_BENCH_PROXY_ADDR"
)

// startReferenceProxy runs a bare reverse proxy in front of upstream as a
// child process, placed exactly as Junction is. It parses nothing and
// records nothing: what it costs is what any HTTP/1.1 proxy hop costs on
// this machine, the floor under Junction's numbers.
func startReferenceProxy(ctx context.Context, dir, upstream string, procs int) (*gateway, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = childEnv(procs, proxyUpstreamEnv+"="+upstream, proxyAddrEnv+"="+addr)
	return startChild(ctx, cmd, addr, filepath.Join(dir, "proxy.stderr"))
}

// serveReferenceProxy is the reference proxy's process: net/http/httputil's
// ReverseProxy with a keep-alive pool as large as Junction's.
func serveReferenceProxy(upstream, addr string) error {
	target, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		// ReverseProxy flushes text/event-stream responses after every
		// read from the upstream whatever this says; plain responses are
		// written once, when complete.
		FlushInterval: 0,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Read the body first, as Junction does. Streamed straight through,
		// it can be closed by this server when the response starts, and the
		// upstream connection with it mid-answer (golang/go#40747).
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		return fmt.Errorf("reference proxy: %w", err)
	}
	return nil
}
