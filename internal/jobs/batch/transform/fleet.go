package transform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/batch"
)

// A transform job runs on instances of its model started for it, as
// SageMaker's do: a transient copy of the model (with the job's
// Environment), an endpoint config of TransformResources' type and count,
// and an endpoint, all named EndpointName(job). Their instance time is
// metered in the ledger under that endpoint, as the job's cost. Start
// makes them, or finds them after a restart; Stop deletes them when the
// job ends.

// variantName is the transient endpoint's one variant.
const variantName = "AllTraffic"

func (t *Transform) poll() time.Duration {
	if t.Poll > 0 {
		return t.Poll
	}
	return 200 * time.Millisecond
}

// Start makes the job's transient endpoint, if it is not there yet, and
// waits for it to be InService. A model that does not exist or instances
// that fail to start fail the job.
func (t *Transform) Start(ctx context.Context, j *batch.Job) error {
	s := SpecOf(j)
	name := EndpointName(j.ID)
	if _, err := t.Hosting.Endpoint(name); isCode(err, hosting.ErrNotFound) {
		if err := t.create(ctx, s, name); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	for {
		ep, err := t.Hosting.Endpoint(name)
		if err != nil {
			return err
		}
		switch ep.Status {
		case hosting.StatusInService:
			// After a restart the stored status is InService before this
			// replica routes to the endpoint's instances again.
			for _, v := range ep.Variants {
				if v.CurrentInstanceCount > 0 {
					t.askExecutionParameters(ctx, j, s, name)
					return nil
				}
			}
		case hosting.StatusFailed:
			return &batch.LineError{Code: "ClientError", Message: fmt.Sprintf("the instances of model %s did not start: %s", s.ModelName, ep.FailureReason)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(t.poll()):
		}
	}
}

// create makes the transient model, endpoint config and endpoint; what a
// crash left made already is kept.
func (t *Transform) create(ctx context.Context, s *Spec, name string) error {
	refuse := func(err error) error {
		var he *hosting.Error
		if errors.As(err, &he) && he.Status < 500 {
			return &batch.LineError{Code: "ValidationException", Message: he.Message}
		}
		return err
	}
	m, err := t.Hosting.Store().Model(ctx, s.ModelName)
	switch {
	case isCode(err, hosting.ErrNotFound):
		if _, cerr := t.Hosting.Store().Model(ctx, name); cerr != nil {
			return &batch.LineError{Code: "ValidationException", Message: fmt.Sprintf("model %s does not exist", s.ModelName)}
		}
	case err != nil:
		return err
	default:
		cp := *m
		cp.Name = name
		cp.Server.Env = maps.Clone(m.Server.Env)
		if len(s.Environment) > 0 && cp.Server.Env == nil {
			cp.Server.Env = map[string]string{}
		}
		maps.Copy(cp.Server.Env, s.Environment)
		if err := t.Hosting.CreateModel(ctx, &cp); err != nil && !isCode(err, hosting.ErrExists) {
			return refuse(err)
		}
	}
	cfg := &hosting.EndpointConfig{Name: name, Variants: []hosting.Variant{{Name: variantName, Model: name,
		InstanceType: s.TransformResources.InstanceType, InstanceCount: s.TransformResources.InstanceCount, Weight: 1}}}
	if err := t.Hosting.CreateConfig(ctx, cfg); err != nil && !isCode(err, hosting.ErrExists) {
		return refuse(err)
	}
	if _, err := t.Hosting.CreateEndpoint(ctx, name, name); err != nil && !isCode(err, hosting.ErrExists) {
		return refuse(err)
	}
	return nil
}

// Stop deletes the job's transient endpoint, waits for its instances to
// stop, and deletes its config and model.
func (t *Transform) Stop(ctx context.Context, j *batch.Job) error {
	name := EndpointName(j.ID)
	t.mu.Lock()
	delete(t.concurrency, j.ID)
	t.mu.Unlock()
	if err := t.Hosting.DeleteEndpoint(ctx, name); err != nil && !isCode(err, hosting.ErrNotFound) {
		return err
	}
	for {
		_, err := t.Hosting.Endpoint(name)
		if isCode(err, hosting.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(t.poll()):
		}
	}
	if err := t.Hosting.DeleteConfig(ctx, name); err != nil && !isCode(err, hosting.ErrNotFound) {
		return err
	}
	if err := t.Hosting.DeleteModel(ctx, name); err != nil && !isCode(err, hosting.ErrNotFound) {
		return err
	}
	return nil
}

// askExecutionParameters takes MaxConcurrentTransforms from the
// container's optional GET /execution-parameters when the job leaves it
// unset, as SageMaker does; a container without the route leaves it 1.
// BatchStrategy and MaxPayloadInMB keep the defaults the job was made
// with: its requests are cut before its instances start.
func (t *Transform) askExecutionParameters(ctx context.Context, j *batch.Job, s *Spec, endpoint string) {
	if s.MaxConcurrentTransforms != 0 {
		return
	}
	status, body, err := t.Hosting.Probe(ctx, endpoint, "/execution-parameters")
	var params struct{ MaxConcurrentTransforms int }
	if err != nil || status != http.StatusOK || json.Unmarshal([]byte(body), &params) != nil || params.MaxConcurrentTransforms < 1 {
		return
	}
	// SageMaker's bound: MaxConcurrentTransforms × MaxPayloadInMB ≤ 100.
	n := params.MaxConcurrentTransforms
	if mb := *s.MaxPayloadInMB; mb > 0 {
		n = min(n, MaxPayloadLimitInMB/mb)
	}
	t.mu.Lock()
	if t.concurrency == nil {
		t.concurrency = map[string]int{}
	}
	t.concurrency[j.ID] = max(n, 1)
	t.mu.Unlock()
}

// Concurrency is the MaxConcurrentTransforms job id runs with on each
// instance: its own, else what its container asked for; 0 when the job
// left it to its container and this replica does not run it now.
func (t *Transform) Concurrency(j *batch.Job) int {
	if n := SpecOf(j).MaxConcurrentTransforms; n > 0 {
		return n
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.concurrency[j.ID]
}

// isCode reports whether err is a hosting error with the given code.
func isCode(err error, code string) bool {
	var he *hosting.Error
	return errors.As(err, &he) && he.Code == code
}
