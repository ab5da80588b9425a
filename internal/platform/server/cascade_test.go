package server_test

import (
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// cascadeJunction serves three models from one fake that answers by
// model: "small" gives smallReply, "large" a good JSON answer, "judge"
// judgeReply.
func cascadeJunction(t *testing.T, smallReply, judgeReply, route string) *junction {
	t.Helper()
	fake := &fakeopenai.Server{Record: true, ReplyFor: func(model string) string {
		switch model {
		case "small-v1":
			return smallReply
		case "judge-v1":
			return judgeReply
		}
		return `{"answer": 42}`
	}}
	return start(t, fake, `  - {name: small, provider: openai, upstream_model: small-v1, price: {input_per_1k: 0.0001, output_per_1k: 0.0001}}
  - {name: large, provider: openai, upstream_model: large-v1, price: {input_per_1k: 0.01, output_per_1k: 0.01}}
  - {name: judge, provider: openai, upstream_model: judge-v1, price: {input_per_1k: 0.001, output_per_1k: 0.001}}
routes:
`+route)
}

func byID(recs []ledger.Record) map[string]ledger.Record {
	m := map[string]ledger.Record{}
	for _, r := range recs {
		m[r.RequestID] = r
	}
	return m
}

func TestCascadeEscalatesOnInvalidJSON(t *testing.T) {
	j := cascadeJunction(t, "Sure! The answer is 42.", "", `  - {name: frugal, type: cascade, deployments: [{model: small}, {model: large}], checks: [non_empty, not_truncated, valid_json]}`)
	body := `{"model":"frugal","response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object","required":["answer"]}}},"messages":[{"role":"user","content":"What is six times seven? JSON please."}]}`
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, body)
	if status != 200 || !strings.Contains(string(b), `{\"answer\": 42}`) {
		t.Fatalf("%d %s", status, b)
	}
	if hdr.Get("X-Junction-Deployment") != "large" || !strings.Contains(hdr.Get("X-Junction-Route-Reason"), "small gave invalid JSON") {
		t.Fatalf("headers %v", hdr)
	}
	id := hdr.Get("X-Request-Id")
	recs := byID(j.records(2))
	step, final := recs[id+".1"], recs[id]
	if step.Deployment != "small" || step.CostUSD == nil || *step.CostUSD <= 0 || final.Deployment != "large" || final.Attempts != 2 {
		t.Fatalf("each attempt's cost must be in the ledger: %+v / %+v", step, final)
	}
	if !strings.Contains(final.RouteReason, "cascade: small gave invalid JSON") {
		t.Fatalf("route reason %q", final.RouteReason)
	}

	// A good first answer stops the cascade there, and a streamed request
	// gets the answer that passed as a stream.
	j2 := cascadeJunction(t, `{"answer": 42}`, "", `  - {name: frugal, type: cascade, deployments: [{model: small}, {model: large}], checks: [valid_json]}`)
	status, hdr, b = j2.do("POST", "/v1/chat/completions", adminKey, strings.Replace(body, `"model":"frugal"`, `"model":"frugal","stream":true`, 1))
	if status != 200 || hdr.Get("X-Junction-Deployment") != "small" || !strings.Contains(string(b), "[DONE]") || !strings.Contains(string(b), `answer`) {
		t.Fatalf("stream: %d %v %s", status, hdr, b)
	}
	if recs := j2.records(1); !recs[0].Stream || recs[0].Deployment != "small" {
		t.Fatalf("stream record %+v", recs[0])
	}
}

func TestCascadeJudge(t *testing.T) {
	j := cascadeJunction(t, "It is probably 40-something.", "3", `  - {name: judged, type: cascade, deployments: [{model: small}, {model: large}], judge: {model: judge, threshold: 0.7}}`)
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"judged","messages":[{"role":"user","content":"What is six times seven?"}]}`)
	if status != 200 || hdr.Get("X-Junction-Deployment") != "large" {
		t.Fatalf("%d %v %s", status, hdr, b)
	}
	if !strings.Contains(hdr.Get("X-Junction-Route-Reason"), "scored 3.0/10 by judge") {
		t.Fatalf("reason %q", hdr.Get("X-Junction-Route-Reason"))
	}
	id := hdr.Get("X-Request-Id")
	// small, its judging, and large — whose answer, the last in the
	// cascade, is not judged: nothing could replace it.
	recs := byID(j.records(3))
	for _, k := range []string{id, id + ".1", id + ".judge1"} {
		if _, ok := recs[k]; !ok {
			t.Fatalf("no ledger record %s in %v", k, recs)
		}
	}
	if recs[id+".judge1"].Deployment != "judge" {
		t.Fatalf("judge record %+v", recs[id+".judge1"])
	}
}
