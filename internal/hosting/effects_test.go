package hosting

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
	"github.com/junctionhq/junction/internal/platform/store"
)

// TestObserveLeavesNetworkWorkToTheEffectsWorker: the runtime's status
// callback returns at once even when learning an OpenAI-compatible
// server's model id waits on the server; the instance takes calls once
// the effects worker has learnt it.
func TestObserveLeavesNetworkWorkToTheEffectsWorker(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte(`{"object":"list","data":[{"id":"served-id","object":"model"}]}`))
	}))
	defer srv.Close()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := New(&Store{DB: db}, nil, nil, nil, Options{})
	defer func() { c.reconciler.cancel(); c.reconciler.wg.Wait() }()

	v := &variant{model: &Model{Name: "m", Server: Server{Type: ServerOpenAI}}}
	in := &instance{v: v, endpoint: "ep"}
	v.setInstances([]*instance{in})
	c.observe(in, hostrt.Status{ID: "ep.c.v.1", State: hostrt.StateReady, Addr: strings.TrimPrefix(srv.URL, "http://")})
	if in.chat.Load() != nil || in.ready.Load() {
		t.Fatal("observe learnt the model id inline, waiting on the model server")
	}
	<-entered // the effects worker asks the server
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for !in.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the instance never became ready once its model id was learnt")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cc := in.chat.Load(); cc == nil || cc.model != "served-id" {
		t.Fatalf("chat client %+v, want the model id the server lists", cc)
	}
}
