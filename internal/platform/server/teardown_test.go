package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestTeardownClosesInReverseOnce(t *testing.T) {
	td := teardown{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var mu sync.Mutex
	var closed []string
	closer := func(name string, err error) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			closed = append(closed, name)
			mu.Unlock()
			return err
		}
	}
	td.add("database", closer("database", nil))
	td.add("ledger", closer("ledger", errors.New("did not drain")))
	td.add("hosting", closer("hosting", nil))
	td.add("http server", closer("http server", nil))

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = td.run(context.Background()) }()
	}
	wg.Wait()
	if want := []string{"http server", "hosting", "ledger", "database"}; !slices.Equal(closed, want) {
		t.Fatalf("closed %v, want %v: the last opened first, each once", closed, want)
	}
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "ledger: did not drain") {
			t.Errorf("run returned %v, want the ledger's error for every caller", err)
		}
	}
	// Something opened after the teardown is closed at once.
	td.add("late", closer("late", nil))
	if closed[len(closed)-1] != "late" || len(closed) != 5 {
		t.Errorf("closed %v: a part added after the teardown must be closed at once", closed)
	}
	if err := td.run(context.Background()); err == nil || len(closed) != 5 {
		t.Errorf("a second run closed again or forgot its error: %v, %v", closed, err)
	}
}
