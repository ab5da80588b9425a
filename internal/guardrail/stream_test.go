package guardrail

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// streamAll pushes chunks through a sync StreamGuard and returns what it
// released and the first stopping verdict.
func streamAll(g *Guard, mode Mode, chunks []string) (string, *Verdict) {
	sg := NewStreamGuard(context.Background(), g, mode)
	var out strings.Builder
	for _, c := range chunks {
		o, v := sg.Push(c)
		out.WriteString(o)
		if v != nil && v.Stop {
			return out.String(), v
		}
	}
	o, v := sg.Close()
	out.WriteString(o)
	if v != nil && v.Stop {
		return out.String(), v
	}
	return out.String(), nil
}

func TestStreamSpansChunks(t *testing.T) {
	g := mustCompile(t, testPolicy())
	filler := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)
	cases := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"email in three chunks", []string{filler + "Write to ja", "ne.doe@exam", "ple.com for help. " + filler},
			filler + "Write to {EMAIL} for help. " + filler},
		{"card split mid-digit", []string{filler + "Card 4111 11", "11 1111 1111 ok " + filler}, filler + "Card {CREDIT_DEBIT_CARD_NUMBER} ok " + filler},
		{"phone split at the plus", []string{filler + "call +", "44 20 7946 0958 now"}, filler + "call {PHONE} now"},
		{"regex split", []string{filler + "order ORD-12", "3456 shipped"}, filler + "order {ORDER_ID} shipped"},
		{"near-miss completed later", []string{filler + "Card 4111 1111 1111 1111", "1 is not a card"}, filler + "Card 4111 1111 1111 11111 is not a card"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, v := streamAll(g, Sync, tc.chunks)
			if v != nil {
				t.Fatalf("stopped: %+v", v.Result.Findings)
			}
			if got != tc.want {
				t.Errorf("streamed\n got %q\nwant %q", got, tc.want)
			}
			whole, _ := g.Apply(context.Background(), Output, strings.Join(tc.chunks, ""))
			if whole.Output != got {
				t.Errorf("streamed output differs from the whole text's\nstream %q\nwhole  %q", got, whole.Output)
			}
		})
	}
}

// TestStreamEqualsWhole cuts texts with PII at random points: the
// streamed, masked output must equal the whole text's, byte for byte.
func TestStreamEqualsWhole(t *testing.T) {
	g := mustCompile(t, testPolicy())
	parts := []string{"Hello there. ", "Mail jane.doe@example.com or ", "call +1 (415) 555-0132, ", "card 5500-0000-0000-0004 ",
		"see https://example.com/a/b?c=d. ", "order ORD-654321. ", "Ordinary words and numbers like 2024 and 3.14. ", "\n\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		var b strings.Builder
		for k := 0; k < 5+rng.IntN(40); k++ {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		text := b.String()
		var chunks []string
		for rest := text; rest != ""; {
			k := min(len(rest), 1+rng.IntN(12))
			chunks = append(chunks, rest[:k])
			rest = rest[k:]
		}
		got, v := streamAll(g, Sync, chunks)
		whole, _ := g.Apply(context.Background(), Output, text)
		if v != nil || got != whole.Output {
			t.Fatalf("text %q\nchunks %q\nstream %q\nwhole  %q", text, chunks, got, whole.Output)
		}
	}
}

func TestStreamBlocks(t *testing.T) {
	g := mustCompile(t, testPolicy())
	filler := strings.Repeat("Fine text here. ", 20)
	// Sync: the profanity is withheld; the caller sends the blocked message.
	got, v := streamAll(g, Sync, []string{filler, "and then sh", "it happened", " and more."})
	if v == nil || !v.Stop || v.Result.Output != "Sorry, I can't answer that." || strings.Contains(got, "sh") && strings.Contains(got, "shit") {
		t.Fatalf("sync: %q %+v", got, v)
	}
	if !strings.HasPrefix(filler, got) {
		t.Errorf("sync released %q, past the clean text", got)
	}
	// Async: everything is forwarded, the violation reported.
	got, v = streamAll(g, Async, []string{filler, "and then sh", "it happened", " and more."})
	if v == nil || !v.Stop || !strings.Contains(got, "shit") {
		t.Fatalf("async: %q %+v", got, v)
	}
}

type fakeStream struct{ evs []llm.Event }

func (f *fakeStream) Recv() (llm.Event, error) {
	if len(f.evs) == 0 {
		return llm.Event{}, io.EOF
	}
	ev := f.evs[0]
	f.evs = f.evs[1:]
	return ev, nil
}
func (f *fakeStream) Close() error { return nil }

func textEvents(chunks ...string) []llm.Event {
	evs := []llm.Event{{Type: llm.EventStart, ID: "x"}}
	for _, c := range chunks {
		evs = append(evs, llm.Event{Type: llm.EventText, Text: c})
	}
	return append(evs, llm.Event{Type: llm.EventStop, StopReason: llm.StopEnd}, llm.Event{Type: llm.EventUsage, Usage: &llm.Usage{OutputTokens: 7}})
}

func drain(t *testing.T, s llm.Stream) (text string, stop llm.StopReason, usage *llm.Usage, err error) {
	t.Helper()
	for {
		ev, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return text, stop, usage, err
		}
		switch ev.Type {
		case llm.EventText:
			text += ev.Text
		case llm.EventStop:
			stop = ev.StopReason
		case llm.EventUsage:
			usage = ev.Usage
		}
	}
}

func TestWrapStream(t *testing.T) {
	g := mustCompile(t, testPolicy())
	ctx := context.Background()
	text, stop, usage, err := drain(t, WrapStream(ctx, g, &fakeStream{textEvents("Mail ja", "ne@example.com", " today")}, Sync))
	if err != nil || text != "Mail {EMAIL} today" || stop != llm.StopEnd || usage == nil {
		t.Errorf("masked: %q %s %v %v", text, stop, usage, err)
	}
	text, stop, usage, err = drain(t, WrapStream(ctx, g, &fakeStream{textEvents("Oh ", "sh", "it!")}, Sync))
	if err != nil || text != "Sorry, I can't answer that." || stop != llm.StopContentFilter || usage == nil || usage.OutputTokens != 7 {
		t.Errorf("blocked: %q %s %v %v", text, stop, usage, err)
	}
	_, _, _, err = drain(t, WrapStream(ctx, g, &fakeStream{textEvents("Oh ", "sh", "it!")}, Async))
	if e := llm.AsError(err); err == nil || e.Code != GuardrailCode {
		t.Errorf("async: %v", err)
	}
}

// waitStream is a stream with ready of its events at hand; a Recv beyond
// them stands for a wait on the network, and is counted.
type waitStream struct {
	fakeStream
	ready, waits int
}

func (w *waitStream) Recv() (llm.Event, error) {
	if w.ready > 0 {
		w.ready--
	} else {
		w.waits++
	}
	return w.fakeStream.Recv()
}

func (w *waitStream) Pending() bool { return w.ready > 0 && len(w.evs) > 0 }

// TestWrapStreamPending: a guarded stream says the next event is at hand
// whenever it is — so that the surface writes events together — and never
// when reading it would wait on the stream under it with the previous
// write not flushed.
func TestWrapStreamPending(t *testing.T) {
	g := mustCompile(t, testPolicy())
	for _, mode := range []Mode{Sync, Async} {
		for _, ready := range []int{0, 3, 100} {
			for _, chunks := range [][]string{{"Mail ja", "ne@example.com", " today"}, {"Oh ", "sh", "it!"}, {strings.Repeat("word ", 200), "end"}} {
				up := &waitStream{fakeStream: fakeStream{textEvents(chunks...)}, ready: ready}
				s := WrapStream(context.Background(), g, up, mode).(interface {
					llm.Stream
					Pending() bool
				})
				held, calls := 0, 0
				for {
					pending, waits := s.Pending(), up.waits
					_, err := s.Recv()
					calls++
					if pending && up.waits > waits {
						t.Fatalf("%s, %d ready, %q: Pending said the next event was at hand, but Recv waited", mode, ready, chunks)
					}
					if pending {
						held++
					}
					if err != nil {
						break
					}
				}
				// With nothing at hand, async text passes one event at a
				// time; sync text held back comes out with the stop.
				if held == 0 && (ready > 0 || mode == Sync) {
					t.Errorf("%s, %d ready, %q: Pending never said an event was at hand", mode, ready, chunks)
				}
				// With the whole stream at hand, every event goes out
				// with the next one: only before the end, which the
				// stream under the guard does not announce, is the
				// answer no. Text the sync guard holds back must not
				// make the events it releases a write each.
				if ready == 100 && held < calls-1 {
					t.Errorf("%s, the whole stream at hand, %q: Pending said yes before %d of %d reads, want all but the last", mode, chunks, held, calls)
				}
			}
		}
	}
}
