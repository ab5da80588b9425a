package respcache

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/redistest"
	"github.com/junctionhq/junction/internal/wire/llm"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func text(s string) []llm.Message {
	return []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: s}}}}
}

// TestKeyNormalisesTheRequest: what changes the answer changes the key;
// streaming, the user and metadata do not; scopes never share keys.
func TestKeyNormalisesTheRequest(t *testing.T) {
	temp := 0.2
	base := &llm.Request{Messages: text("hi"), Temperature: &temp}
	k := Key("team:a", "m", base)
	same := *base
	same.Stream, same.User, same.Model = true, "u1", "upstream-id"
	same.Extra = map[string]json.RawMessage{"metadata": json.RawMessage(`{"x":"y"}`), "stream_options": json.RawMessage(`{}`)}
	if Key("team:a", "m", &same) != k {
		t.Error("stream, user, upstream model and metadata must not change the key")
	}
	other := 0.9
	for name, r := range map[string]*llm.Request{
		"messages":    {Messages: text("hello"), Temperature: &temp},
		"temperature": {Messages: text("hi"), Temperature: &other},
		"tools":       {Messages: text("hi"), Temperature: &temp, Tools: []llm.Tool{{Name: "f"}}},
		"extra":       {Messages: text("hi"), Temperature: &temp, Extra: map[string]json.RawMessage{"seed": json.RawMessage("1")}},
	} {
		if Key("team:a", "m", r) == k {
			t.Errorf("%s must change the key", name)
		}
	}
	if Key("team:b", "m", base) == k || Key("team:a", "m2", base) == k {
		t.Error("the scope and the model must change the key")
	}
}

// TestMemoryBoundsAndExpires: the least recently used entries leave to
// keep the bound; an entry past its TTL is a miss.
func TestMemoryBoundsAndExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	m := &Memory{MaxBytes: 30, Now: func() time.Time { return now }}
	ctx := context.Background()
	m.Set(ctx, "a", []byte("0123456789"), time.Minute) // 11 bytes
	m.Set(ctx, "b", []byte("0123456789"), time.Minute)
	m.Get(ctx, "a") // a is now the most recently used
	m.Set(ctx, "c", []byte("0123456789"), time.Minute)
	if _, ok, _ := m.Get(ctx, "b"); ok {
		t.Error("b, the least recently used, should have been evicted")
	}
	if _, ok, _ := m.Get(ctx, "a"); !ok {
		t.Error("a was evicted")
	}
	m.Set(ctx, "huge", make([]byte, 64), time.Minute)
	if _, ok, _ := m.Get(ctx, "huge"); ok || m.Len() != 2 {
		t.Errorf("a value above the bound must not be stored (len %d)", m.Len())
	}
	now = now.Add(time.Minute)
	if _, ok, _ := m.Get(ctx, "a"); ok {
		t.Error("an entry past its TTL was served")
	}
}

// TestRedisStore: entries round-trip through Redis and expire there.
func TestRedisStore(t *testing.T) {
	r := &Redis{Client: redistest.Client(t), Prefix: redistest.Prefix(t) + ":"}
	c := &Cache{Store: r, TTL: time.Minute}
	ctx := context.Background()
	cost := 0.5
	c.Put(ctx, "k", &Entry{Response: &llm.Response{Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}, Served: "m", CostUSD: &cost})
	e, ok := c.Get(ctx, "k")
	if !ok || e.Response.Content[0].Text != "hi" || *e.CostUSD != 0.5 {
		t.Fatalf("entry %+v %v", e, ok)
	}
	if ttl := r.Client.PTTL(ctx, r.Prefix+"k").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("redis ttl %v", ttl)
	}
	if _, ok := c.Get(ctx, "missing"); ok {
		t.Fatal("a missing key hit")
	}
}
