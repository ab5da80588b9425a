package server

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/junctionhq/junction/internal/api"
	hostingapi "github.com/junctionhq/junction/internal/api/hosting"
	sagemakerapi "github.com/junctionhq/junction/internal/api/sagemaker"
	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/hostrt"
	"github.com/junctionhq/junction/internal/hostrt/process"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/metrics"
)

// newHosting builds the hosting controller: model servers run as child
// processes under DATA_DIR/instances, artifacts (file:// or s3://) unpack
// under DATA_DIR/artifacts.
func newHosting(cfg *config.Config, db *sql.DB, catalog *ledger.Catalog, capture hosting.Capturer, log *slog.Logger) (*hosting.Controller, error) {
	gpus := cfg.Hosting.GPUs
	if len(gpus) == 0 {
		gpus = hostGPUs()
	}
	var rt hostrt.Runtime
	var lease hosting.Lease // nil: the store's
	var err error
	if cfg.Hosting.Runtime == config.RuntimeKubernetes {
		rt, lease, err = newKubernetesRuntime(cfg, log)
	} else {
		rt, err = process.New(filepath.Join(cfg.Server.DataDir, "instances"), process.WithLogger(log), process.WithGPUs(gpus))
	}
	if err != nil {
		return nil, fmt.Errorf("hosting runtime: %w", err)
	}
	// Until the controller owns the runtime, a failure lets go of it (the
	// process runtime holds a lock on its directory).
	fail := func(err error) (*hosting.Controller, error) {
		rt.Detach()
		return nil, err
	}
	s3, err := newS3(cfg)
	if err != nil {
		return fail(err)
	}
	blobs, err := blob.New(filepath.Join(cfg.Server.DataDir, "artifacts"), blob.WithFetcher("s3", s3))
	if err != nil {
		return fail(fmt.Errorf("artifact cache: %w", err))
	}
	types := hosting.CatalogInstances(catalog)
	for _, it := range cfg.Hosting.InstanceTypes {
		types[it.Type] = hosting.InstanceType{Type: it.Type, USDPerHour: it.USDPerHour, GPUs: it.GPUs, CPUs: it.CPUs, MemoryMB: it.MemoryMB}
	}
	self, err := os.Executable()
	if err != nil {
		return fail(fmt.Errorf("cannot find Junction's own executable for the reference model server: %w", err))
	}
	return hosting.New(&hosting.Store{DB: db}, rt, blobs, types, hosting.Options{
		Self: self, HealthInterval: cfg.Hosting.HealthInterval, StopGrace: cfg.Hosting.StopGrace,
		MeterInterval: cfg.Hosting.MeterInterval, KeepInstancesOnClose: cfg.Hosting.KeepInstancesOnShutdown, Log: log,
		DrainTimeout: cfg.Hosting.InvocationTimeout, HoldQueue: cfg.Hosting.ColdStart.QueueSize, HoldTimeout: cfg.Hosting.ColdStart.MaxWait,
		ServerlessUSDPerGBSecond: catalog.Serverless.USDPerGBSecond, Capture: capture, Lease: lease,
	}), nil
}

// hostGPUs lists the NVIDIA GPUs the driver reports, as indices.
func hostGPUs() []int {
	entries, err := os.ReadDir("/proc/driver/nvidia/gpus")
	if err != nil {
		return nil
	}
	out := make([]int, len(entries))
	for i := range entries {
		out[i] = i
	}
	sort.Ints(out)
	return out
}

// registerHosting adds the hosting REST API and the SageMaker runtime
// surface.
func (s *Server) registerHosting(mux *http.ServeMux, adminAuth func(http.Handler) http.Handler, gw *gateway.Gateway, ks *keys.Store, creds *awscreds.Store) {
	(&hostingapi.Handler{Controller: s.hosting}).Register(mux, adminAuth)
	(&hostingapi.Handler{Controller: s.hosting}).RegisterCapacity(mux, adminAuth)
	policies := &autoscale.Store{DB: s.db}
	(&hostingapi.Scaling{Controller: s.hosting, Policies: policies}).Register(mux, adminAuth)
	as := s.cfg.Hosting.Autoscale
	s.scaler = autoscale.New(s.hosting, policies, autoscale.Options{Interval: as.Interval, Window: as.Window, ServerlessIdle: as.ServerlessIdle, Log: s.log})
	s.metrics.Register(s.scaler.Collector())
	s.scaler.Register(autoscale.BacklogPerInstance, s.async.BacklogSource)
	gw.Endpoints = s.hosting
	s.asyncCalls.gw = gw
	sm := &sagemakerapi.Handler{Gateway: gw, Auth: api.NewAWSAuth(ks, creds, sagemakerapi.SigningName),
		MaxBodyBytes: s.cfg.Hosting.MaxInvocationBytes, Timeout: s.cfg.Hosting.InvocationTimeout, Log: s.log}
	sm.Register(mux)
	s.metrics.Register(s.hosting.BatchCollectors()...)
	(&sagemakerapi.AsyncHandler{Queue: s.async, Auth: sm.Auth, Log: s.log}).Register(mux)
	s.async.Register(mux, adminAuth)
	s.metrics.Register(s.async.Collector())
	s.metrics.Register(s.capture.Collector())
	s.metrics.Register(s.hosting.MultiModelCollectors()...)
	s.metrics.WatchFleet(func() []metrics.FleetVariant { return fleet(s.hosting.Endpoints()) })
}
