package server_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// hostingYAML is the config of a junction serve child process with fast
// hosting timings; database, when set, is shared with other replicas;
// hosting adds fields to the hosting section.
func hostingYAML(database string, hosting ...string) string {
	db := ""
	if database != "" {
		db = fmt.Sprintf(", database: %q", database)
	}
	return fmt.Sprintf(`
server: {upstream_timeout: 5s, shutdown_timeout: 10s%s}
auth: {admin_key: %q}
log: {level: warn}
hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, invocation_timeout: 5s%s}
`, db, adminKey, strings.Join(append([]string{""}, hosting...), ", "))
}

// childJunction wraps a junction serve process in the test helpers.
func childJunction(t *testing.T, p *junctiontest.Process) *junction {
	return &junction{t: t, url: p.URL, dataDir: p.DataDir}
}

// refModel stores the reference model as name, served by the junction
// binary's model-server command.
func (j *junction) refModel(name, artifact string) {
	j.t.Helper()
	j.admin("POST", "/api/v1/models", hosting.Model{Name: name, Artifact: "file://" + artifact,
		Server: hosting.Server{Type: "byoc", Command: "junction", Args: []string{"model-server"},
			Env: map[string]string{modelserver.EnvFaults: "1"}, StartupTimeoutSeconds: 30}}, http.StatusCreated, nil)
}

// startWithRefModel starts a junction serve child with the reference
// model stored as "m".
func startWithRefModel(t *testing.T) (*junctiontest.Process, *junction) {
	art := filepath.Join(t.TempDir(), "model")
	if err := refmodel.WriteDemoArtifact(art); err != nil {
		t.Fatal(err)
	}
	p := junctiontest.Start(t, junctiontest.Options{Config: hostingYAML("")})
	j := childJunction(t, p)
	j.refModel("m", art)
	return p, j
}

// parentOf returns a process's parent pid, or 0 when it is gone.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 || fields[0] == "Z" {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// killOnCleanup SIGKILLs model servers a killed Junction left behind.
func killOnCleanup(t *testing.T, ep *hosting.Endpoint) {
	for _, v := range ep.Variants {
		for _, in := range v.Instances {
			pid := in.PID
			t.Cleanup(func() {
				if processAlive(pid) {
					syscall.Kill(-pid, syscall.SIGKILL)
				}
			})
		}
	}
}

// TestKilledDuringACanaryJunctionConvergesAfterRestart: Junction is
// killed (SIGKILL) while a canary bakes. The next start adopts the old
// fleet's model servers, stops the canary's, and runs the update again to
// its end; no model server is left over or doubled, and no stretch of
// instance time is metered twice.
func TestKilledDuringACanaryJunctionConvergesAfterRestart(t *testing.T) {
	p, j := startWithRefModel(t)
	j.endpointConfig("v1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.endpointConfig("v2", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g5.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "v1"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, converged)
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2", "deployment": map[string]any{
		"type": "canary", "canary_percent": 50, "wait_seconds": 5}}, http.StatusAccepted, nil)
	mid := j.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool {
		return strings.Contains(j.events("ep"), "shifted 50%") && len(e.Variants) == 2
	})
	killOnCleanup(t, mid)
	p.Kill()

	p2 := junctiontest.Start(t, junctiontest.Options{Config: hostingYAML(""), DataDir: p.DataDir})
	j2 := childJunction(t, p2)
	done := j2.waitEndpoint("ep", 60*time.Second, func(e *hosting.Endpoint) bool { return converged(e) && e.Config == "v2" })
	if done.FailureReason != "" || len(done.Variants) != 1 || len(done.Variants[0].Instances) != 2 {
		t.Fatalf("after the restart: %+v", done)
	}
	if ev := j2.events("ep"); !strings.Contains(ev, "interrupted by a restart") || !strings.Contains(ev, "update complete") {
		t.Fatalf("events:\n%s", ev)
	}
	// Every model server the killed Junction ran is gone (the canary's
	// stopped at recovery, the old fleet's after the update); the
	// endpoint runs exactly its two, children of the new Junction.
	for _, v := range mid.Variants {
		for _, in := range v.Instances {
			if processAlive(in.PID) {
				t.Fatalf("model server %d of config %s outlived the update", in.PID, v.Config)
			}
		}
	}
	for _, in := range done.Variants[0].Instances {
		if parentOf(in.PID) != p2.Pid() {
			t.Fatalf("instance %s (pid %d) is not the new Junction's child", in.ID, in.PID)
		}
	}
	p2.Stop()
	db, err := store.Open(t.Context(), filepath.Join(p.DataDir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	assertMeteredOnce(t, db)
}

// assertMeteredOnce fails if two metered segments of one instance
// overlap.
func assertMeteredOnce(t *testing.T, db *sql.DB) {
	t.Helper()
	var n, overlaps int
	if err := db.QueryRow(`SELECT COUNT(*) FROM hosting_usage`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("metered segments: %d %v", n, err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM hosting_usage a JOIN hosting_usage b ON a.instance_id = b.instance_id
		AND a.id < b.id AND a.start_ts < b.end_ts AND b.start_ts < a.end_ts`).Scan(&overlaps); err != nil {
		t.Fatal(err)
	}
	if overlaps != 0 {
		t.Fatalf("%d pairs of segments meter the same instance time twice", overlaps)
	}
}

// TestOnlyTheLeaseHolderReconcilesAndAnotherTakesOver: two Junctions on
// one database. The first holds the hosting lease and runs the model
// servers; the second starts nothing, yet routes invocations to the
// holder's instances, which it describes as the holder published them.
// Clients invoke through both when the first is killed: the second takes
// the lease and brings the endpoint back within seconds, and calls
// through it go on being answered (at most told to retry meanwhile); a
// third replica then routes to the new holder's instances. No
// instance-second is metered twice: not by one instance's segments, nor
// by the two holders' instances over each other.
func TestOnlyTheLeaseHolderReconcilesAndAnotherTakesOver(t *testing.T) {
	pg := storetest.Postgres(t)
	art := filepath.Join(t.TempDir(), "model")
	if err := refmodel.WriteDemoArtifact(art); err != nil {
		t.Fatal(err)
	}
	pa := junctiontest.Start(t, junctiontest.Options{Config: hostingYAML(pg)})
	pb := junctiontest.Start(t, junctiontest.Options{Config: hostingYAML(pg)})
	a, b := childJunction(t, pa), childJunction(t, pb)
	// Written through the replica that does not reconcile.
	b.refModel("m", art)
	b.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	b.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	ep := a.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool {
		return converged(e) && len(e.Variants) == 1 && e.Variants[0].CurrentInstanceCount == 2
	})
	killOnCleanup(t, ep)
	// Both replicas describe the holder's two instances, and route to
	// them: every invocation through either succeeds.
	runBy := func(j *junction, pid int) func(*hosting.Endpoint) bool {
		return func(e *hosting.Endpoint) bool {
			if !converged(e) || len(e.Variants) != 1 || e.Variants[0].CurrentInstanceCount != 2 {
				return false
			}
			for _, in := range e.Variants[0].Instances {
				if parentOf(in.PID) != pid {
					return false
				}
			}
			return true
		}
	}
	a.waitEndpoint("ep", 10*time.Second, runBy(a, pa.Pid()))
	b.waitEndpoint("ep", 10*time.Second, runBy(b, pa.Pid()))
	invokeAll(t, "before the kill", a, b)

	// Clients invoke through both replicas; the holder is killed under
	// them. Through the survivor, calls keep being answered: by the old
	// instances while it follows, by its own once it has taken over.
	lb, killed := killUnderLoad(t, pa, a, b)
	took := b.waitEndpoint("ep", 30*time.Second, runBy(b, pb.Pid()))
	killOnCleanup(t, took)
	lb.mark()
	lb.waitOK(t, 100)
	ok, failed, errs := lb.finish()
	t.Logf("the second replica took over and served in %s; through it %d calls ok, %d failed during the takeover", time.Since(killed).Round(100*time.Millisecond), ok, failed)
	if lb.failedAfter.Load() != 0 {
		t.Fatalf("%d calls through the survivor failed after its instances were ready: %v", lb.failedAfter.Load(), errs)
	}
	// During the takeover a call may only be told to retry: the new
	// holder's instances not ready yet (429 ModelNotReady), or no route
	// within the wait (503 ServiceUnavailable).
	for _, e := range errs {
		if !strings.HasPrefix(e, "429 ") && !strings.HasPrefix(e, "503 ") {
			t.Fatalf("a call through the survivor failed during the takeover with %q, not a retryable 429 or 503", e)
		}
	}
	invokeAll(t, "after the takeover", b)

	// A replica started now follows the new holder.
	pc := junctiontest.Start(t, junctiontest.Options{Config: hostingYAML(pg)})
	c := childJunction(t, pc)
	c.waitEndpoint("ep", 10*time.Second, runBy(c, pb.Pid()))
	invokeAll(t, "after the takeover", b, c)

	pc.Stop()
	pb.Stop()
	db := meteredOnce(t, pg)
	// The ledger's hosting cost counts no instance-second twice: the
	// killed holder's instances are metered until it died at the latest,
	// the new holder's from after it took over, and at no moment are
	// more instances metered than the endpoint's two.
	var killedEnd, tookStart int64
	if err := db.QueryRow(`SELECT MAX(end_ts) FROM hosting_usage WHERE instance_id IN (?, ?)`,
		ep.Variants[0].Instances[0].ID, ep.Variants[0].Instances[1].ID).Scan(&killedEnd); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT MIN(start_ts) FROM hosting_usage WHERE instance_id IN (?, ?)`,
		took.Variants[0].Instances[0].ID, took.Variants[0].Instances[1].ID).Scan(&tookStart); err != nil {
		t.Fatal(err)
	}
	if killedEnd > killed.UnixMilli() || tookStart < killed.UnixMilli() {
		t.Fatalf("the killed holder's instances metered until %d, the new holder's from %d; killed at %d", killedEnd, tookStart, killed.UnixMilli())
	}
	if n := maxConcurrentlyMetered(t, db); n > 2 {
		t.Fatalf("%d instances metered at one moment, for an endpoint of two", n)
	}
}

// meteredOnce opens the ledger's database at dsn, closed when the test
// ends, and fails if two metered segments of one instance overlap.
func meteredOnce(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	assertMeteredOnce(t, db)
	return db
}

// meteredSpan is an instance's metered time: where its first segment
// starts, where its last ends, and the sum of their lengths, in Unix
// milliseconds.
func meteredSpan(t *testing.T, db *sql.DB, instance string) (first, last, sum int64) {
	t.Helper()
	if err := db.QueryRow(`SELECT MIN(start_ts), MAX(end_ts), SUM(end_ts - start_ts) FROM hosting_usage WHERE instance_id = ?`, instance).
		Scan(&first, &last, &sum); err != nil {
		t.Fatal(err)
	}
	return first, last, sum
}

// killUnderLoad starts clients invoking endpoint "ep" through replicas a
// (process p) and b, kills p (SIGKILL) once both have served, and returns
// b's load, still running, and the time of the kill.
func killUnderLoad(t *testing.T, p *junctiontest.Process, a, b *junction) (*load, time.Time) {
	t.Helper()
	la, lb := startLoad(a, "ep", 2), startLoad(b, "ep", 2)
	la.waitOK(t, 50)
	lb.waitOK(t, 50)
	p.Kill()
	killed := time.Now()
	la.finish()
	return lb, killed
}

// maxConcurrentlyMetered is the most instances the ledger meters at any
// one moment.
func maxConcurrentlyMetered(t *testing.T, db *sql.DB) int {
	t.Helper()
	rows, err := db.Query(`SELECT start_ts, 1 FROM hosting_usage UNION ALL SELECT end_ts, -1 FROM hosting_usage ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, most := 0, 0
	for rows.Next() {
		var ts int64
		var d int
		if err := rows.Scan(&ts, &d); err != nil {
			t.Fatal(err)
		}
		n += d
		most = max(most, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return most
}

// invokeAll sends invocations through each replica; every one must
// succeed.
func invokeAll(t *testing.T, when string, replicas ...*junction) {
	t.Helper()
	for i, j := range replicas {
		for range 10 {
			if status, _, body := j.invoke("ep", `{"inputs":"hello"}`); status != 200 {
				t.Fatalf("%s, invoke through replica %d: %d %s", when, i, status, body)
			}
		}
	}
}
