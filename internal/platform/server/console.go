package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	guardrailapi "github.com/junctionhq/junction/internal/api/guardrail"
	jobsapi "github.com/junctionhq/junction/internal/api/jobs"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/secret"
	"github.com/junctionhq/junction/internal/console"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/governance/audit"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/jobs/batch"
)

// registerConsole mounts the web console at /ui. Its sessions are sealed
// under the data directory's master key (the one AWS credentials use),
// opened on the first sign-in; its changes are audited like the admin
// API's.
func (s *Server) registerConsole(mux *http.ServeMux, auditLog *audit.Log, adm *admin.Handler, gr *guardrailapi.Handler, gw *gateway.Gateway) {
	box := sync.OnceValues(func() (*secret.Box, error) {
		return secret.Open(filepath.Join(s.cfg.Server.DataDir, secret.KeyFile))
	})
	c := &console.Handler{Keys: s.keys, DB: s.db, Box: box, Log: s.log, Budgets: s.gov.Budgets, Governor: s.gov}
	c.Advise, c.Audit = adm.Advise, adm.AuditEntries
	c.Guardrails = func(r *http.Request) ([]*guardrail.Record, error) { return gr.List(r.Context()) }
	if gr.Registry.Store() != nil {
		c.GuardrailEditor = gr
	}
	if s.hosting != nil {
		c.Endpoints = func() []*hosting.Endpoint { return s.hosting.Endpoints() }
		activities := &autoscale.Store{DB: s.db}
		c.Activities = func(ctx context.Context, endpoint string) ([]autoscale.Activity, error) {
			return activities.Activities(ctx, endpoint, "", 1000)
		}
		c.Invoke = func(r *http.Request, key *keys.Key, inv *hosting.Invocation) (*hosting.Result, error) {
			call := &gateway.Call{Surface: "console", RequestID: api.InfoFrom(r.Context()).RequestID, Key: key, Tags: key.Tags,
				Start: time.Now(), Hosted: true}
			defer gw.End(call)
			return gw.Invoke(r.Context(), call, inv)
		}
	}
	if s.batch != nil {
		engine := s.batch.engine
		c.Jobs = func(ctx context.Context) ([]jobsapi.Job, error) {
			list, _, err := engine.List(ctx, batch.Filter{Limit: 200})
			out := make([]jobsapi.Job, len(list))
			for i, j := range list {
				out[i] = jobsapi.View(engine, j)
			}
			return out, err
		}
		c.CancelJob = func(ctx context.Context, id string) error {
			_, err := engine.Cancel(ctx, "", id)
			if errors.Is(err, batch.ErrNotFound) {
				return fmt.Errorf("job %s does not exist: %w", id, console.ErrNotFound)
			}
			return err
		}
	}
	if s.async != nil {
		c.Queues = func(ctx context.Context) ([]async.Stats, error) { return s.async.Stats(ctx, "") }
	}
	c.Register(mux, auditLog.Wrap)
}
