package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/junctionhq/junction/internal/provider/openai"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// chatClient calls one openai-type instance.
type chatClient struct {
	p *openai.Provider
	// model is the id the server answers to.
	model string
	// base is the server address the client calls.
	base string
}

// newChatClient builds the adapter for an instance's address and learns
// the model id it serves (the configured one, else the first that GET
// /v1/models lists, else the endpoint's name).
func (p *plane) newChatClient(in *instance, base string) *chatClient {
	cc := &chatClient{p: openai.New(openai.Config{Name: "endpoint " + in.endpoint, BaseURL: base + "/v1", Client: p.client, PassThrough: true}),
		model: in.v.model.Server.ServedModel, base: base}
	if cc.model == "" {
		cc.model = in.endpoint
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/models", nil)
		if resp, err := p.client.Do(req); err == nil {
			var list struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			if json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Data) > 0 && list.Data[0].ID != "" {
				cc.model = list.Data[0].ID
			}
			resp.Body.Close()
		}
	}
	return cc
}

// Provider is the gateway's view of the endpoints: an llm.Provider whose
// model ids are endpoint names. Endpoints whose server is OpenAI-compatible
// serve chat completions through it, so they can sit in routes beside
// provider models.
func (p *plane) Provider() llm.Provider { return endpointProvider{p} }

// Serves reports whether name is an endpoint with an OpenAI-compatible
// server, which the gateway can route chat requests to. An endpoint that
// exists but cannot be routed to yet (its spec just stored, being created,
// or brought back after a restart) is served too: a chat call to it gets the endpoint's
// retryable 503, not "model not found"; if its server turns out not to
// be OpenAI-compatible, the call is told so once it routes.
func (p *plane) Serves(name string) bool {
	r := p.lookup(name)
	if r == nil {
		return p.stored(name)
	}
	if rt := r.route.Load(); rt != nil {
		return rt.active.variants[0].model.Server.Type == ServerOpenAI
	}
	return true
}

// storedLookupTimeout bounds the store read of stored.
const storedLookupTimeout = time.Second

// stored reports whether an endpoint of that name is stored and not being
// deleted although this replica does not know it yet: its spec was just
// written and the reconciler has not taken it up. It reads the store, so
// it costs a query only for a name that is neither a configured model nor
// an endpoint this replica knows.
func (p *plane) stored(name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storedLookupTimeout)
	defer cancel()
	sp, err := p.store.spec(ctx, name)
	return err == nil && sp != nil && !sp.Deleting
}

// ChatEndpoints names the endpoints in service whose server is
// OpenAI-compatible, in order.
func (p *plane) ChatEndpoints() []string {
	eps := p.routable()
	var out []string
	for _, name := range sortedKeys(eps) {
		if rt := eps[name].route.Load(); rt != nil && rt.active.variants[0].model.Server.Type == ServerOpenAI {
			out = append(out, name)
		}
	}
	return out
}

type endpointProvider struct{ c *plane }

// variant chooses the variant of the endpoint named by the request, or
// the error the gateway gets.
func (p endpointProvider) variant(ctx context.Context, name string) (*variant, error) {
	r, err := p.c.route(ctx, name)
	if err != nil {
		// Unavailable rather than not found: a route that lists the
		// endpoint falls back to its other deployments while the endpoint
		// is being created, has failed or was deleted.
		return nil, endpointErr(err, true)
	}
	v, _, _ := r.choose(name, "")
	if v.model.Server.Type != ServerOpenAI {
		return nil, llm.Errorf(http.StatusBadRequest, llm.ErrInvalidRequest,
			"endpoint %s runs a byoc model server; invoke it at POST /endpoints/%s/invocations", name, name)
	}
	return v, nil
}

// each makes a chat call on one of the endpoint's instances through the
// variant's pick-and-retry path: call sends the request (its model set to
// the server's id) and reports whether it left the instance busy (a
// stream still open).
func (p endpointProvider) each(ctx context.Context, req *llm.Request, start time.Time, call func(in *instance, r *llm.Request) (busy bool, err error)) error {
	v, err := p.variant(ctx, req.Model)
	if err != nil {
		return err
	}
	if v, err = p.c.awaitChat(ctx, req.Model, v); err != nil {
		return err
	}
	var busy bool
	in, err := v.try(func(in *instance) (bool, bool, error) {
		cc := in.chat.Load()
		if cc == nil {
			return false, true, errNoAddress
		}
		r := *req
		r.Model = cc.model
		var err error
		busy, err = call(in, &r)
		return busy, err != nil && refused(err), err
	})
	switch {
	case in != nil && busy:
		return nil // recorded when its stream is closed
	case in != nil:
		v.stats.record(msSince(start), false)
		return nil
	case err == nil || errors.Is(err, errNoAddress):
		e := llm.Errorf(http.StatusServiceUnavailable, llm.ErrOverloaded, "no instance of endpoint %s (variant %s) is ready", req.Model, v.spec.Name)
		e.Provider = "endpoint"
		err = e
	}
	v.stats.record(msSince(start), true)
	return err
}

func (p endpointProvider) Chat(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	var resp *llm.Response
	err := p.each(ctx, req, time.Now(), func(in *instance, r *llm.Request) (bool, error) {
		var err error
		resp, err = in.chat.Load().p.Chat(ctx, r)
		if resp != nil {
			in.v.scale.tokens.Add(int64(resp.Usage.OutputTokens))
		}
		return false, err
	})
	if resp != nil {
		resp.Model = req.Model
	}
	return resp, err
}

func (p endpointProvider) ChatStream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	var out llm.Stream
	start := time.Now()
	err := p.each(ctx, req, start, func(in *instance, r *llm.Request) (bool, error) {
		s, err := in.chat.Load().p.ChatStream(ctx, r)
		if err != nil {
			return false, err
		}
		// The stream keeps the instance busy until it is closed.
		out = &chatStream{Stream: s, in: in, start: start}
		return true, nil
	})
	return out, err
}

// chatStream releases its instance when closed.
type chatStream struct {
	llm.Stream
	in     *instance
	start  time.Time
	failed bool
	done   bool
}

func (s *chatStream) Recv() (llm.Event, error) {
	ev, err := s.Stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		s.failed = true
	}
	if ev.Usage != nil {
		s.in.v.scale.tokens.Add(int64(ev.Usage.OutputTokens))
	}
	return ev, err
}

func (s *chatStream) Close() error {
	if !s.done {
		s.done = true
		s.in.release()
		s.in.v.stats.record(msSince(s.start), s.failed)
	}
	return s.Stream.Close()
}
