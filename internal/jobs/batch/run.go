package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"
)

// run takes job j through its statuses until it ends or ctx does. It is
// safe to run again on the same job after a crash at any point.
func (e *Engine) run(ctx context.Context, j *Job, p *progress) {
	kind := e.kinds[j.Kind]
	renewed := make(chan struct{})
	id := j.ID // j is reloaded in place while the lease is renewed
	go func() {
		defer close(renewed)
		e.renew(ctx, id, p)
	}()
	defer func() { p.stopRun(); <-renewed }()
	log := e.opt.Log.With("job", j.ID, "kind", j.Kind)
	for ctx.Err() == nil && !j.Status.Terminal() {
		var err error
		switch j.Status {
		case Validating:
			err = e.validate(ctx, kind, j)
		case InProgress:
			err = e.process(ctx, kind, j, p)
		case Finalizing, Cancelling:
			err = e.finish(ctx, kind, j)
		default:
			err = fmt.Errorf("unknown status %q", j.Status)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// A failure of Junction's own (the store, the disk): the job
			// stays where it is and runs again on a later look.
			log.Error("batch: job step failed", "status", j.Status, "err", err)
			return
		}
	}
}

// renew keeps the job's lease while it runs, and watches for a cancel
// made on another replica. A lease lost to another replica stops the run.
func (e *Engine) renew(ctx context.Context, id string, p *progress) {
	every := min(e.opt.Lease/3, e.opt.PollInterval)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		ok, err := e.jobs.lease(ctx, id, e.owner, now, now.Add(e.opt.Lease))
		if err == nil && !ok {
			e.opt.Log.Warn("batch: lost the lease on a job to another replica", "job", id)
			p.stopRun()
			return
		}
		if j, err := e.jobs.get(ctx, id); err == nil && j.Status == Cancelling {
			p.cancel()
		}
	}
}

// validate reads the whole input once, counting its records and checking
// each; the first bad line fails the job, naming the line.
func (e *Engine) validate(ctx context.Context, kind Kind, j *Job) error {
	in, err := kind.Open(ctx, j)
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			return e.failValidation(ctx, j, *le)
		}
		return err
	}
	defer in.Close()
	var total int64
	var model string
	var bad *LineError
	check := kind.Validate(j)
	err = scan(in, e.limits(kind, j).MaxLine, func(idx, n int, line []byte) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m, le := check(n, line)
		if le != nil {
			bad = le
			return errStop
		}
		if model == "" {
			model = m
		}
		total++
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.failValidation(ctx, j, LineError{Code: "invalid_file", Message: "reading the input: " + err.Error()})
	}
	if bad != nil {
		return e.failValidation(ctx, j, *bad)
	}
	if total == 0 {
		return e.failValidation(ctx, j, LineError{Code: "empty_file", Message: "the input has no records"})
	}
	j.Total, j.Model = total, model
	if err := e.jobs.validated(ctx, j); err != nil {
		return err
	}
	moved, err := e.jobs.setStatus(ctx, j, InProgress, Validating)
	if err == nil && !moved {
		return e.reload(ctx, j) // cancelled meanwhile
	}
	return err
}

func (e *Engine) failValidation(ctx context.Context, j *Job, le LineError) error {
	j.Errors = []LineError{le}
	if err := e.jobs.validated(ctx, j); err != nil {
		return err
	}
	moved, err := e.jobs.setStatus(ctx, j, Failed, Validating, Cancelling)
	if err == nil && moved {
		err = e.jobs.finished(ctx, j, Failed, map[string]string{})
	}
	return err
}

// reload reads the job's stored state into j.
func (e *Engine) reload(ctx context.Context, j *Job) error {
	fresh, err := e.jobs.get(ctx, j.ID)
	if err != nil {
		return err
	}
	*j = *fresh
	return nil
}

// process runs the job's pending records: it reads the input in order,
// skips the records finished before, starts each other one under the
// model's pacer, and commits results in small transactions. It stops
// starting records when the job is cancelled or its window passes; the
// records in flight then finish and are kept.
func (e *Engine) process(ctx context.Context, kind Kind, j *Job, p *progress) error {
	// A cancel ends the wait for what the records need.
	sctx, stopStart := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.cancelled:
			stopStart()
		case <-sctx.Done():
		}
	}()
	failed, err := e.start(sctx, kind, j)
	stopStart()
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		return e.reload(ctx, j) // cancelling: finish takes it from here
	}
	if err != nil || failed {
		return err
	}
	doneSet, err := e.jobs.doneSet(ctx, j.ID, j.Total)
	if err != nil {
		return err
	}
	in, err := kind.Open(ctx, j)
	if err != nil {
		return err
	}
	defer in.Close()
	lim := e.limits(kind, j)
	pacer := e.jobPacer(kind, j)
	results := make(chan done, e.opt.Concurrency)
	committed := make(chan error, 1)
	go func() { committed <- e.commitLoop(ctx, j, p, results) }()

	// Starting records stops on cancel or expiry; calls in flight run on
	// under ctx, which ends only when Junction stops.
	dctx, stopDispatch := context.WithCancel(ctx)
	defer stopDispatch()
	go func() {
		select {
		case <-p.cancelled:
			stopDispatch()
		case <-dctx.Done():
		}
	}()
	expiry := time.AfterFunc(time.Until(j.ExpiresAt), stopDispatch)
	defer expiry.Stop()

	var wg sync.WaitGroup
	scanErr := scan(in, lim.MaxLine, func(idx, _ int, line []byte) error {
		if doneSet.has(idx) {
			return nil
		}
		if err := pacer.Acquire(dctx); err != nil {
			return errStop
		}
		rec := Record{Index: idx, Input: bytes.Clone(line)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, ok := e.runRecord(ctx, kind, j, pacer, lim.MaxAttempts, rec); ok {
				results <- d
			}
		}()
		return nil
	})
	wg.Wait()
	close(results)
	if err := <-committed; err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if scanErr != nil {
		return scanErr
	}
	if err := e.reload(ctx, j); err != nil {
		return err
	}
	if j.Status != InProgress {
		return nil // cancelling: finish takes it from here
	}
	// Every record is done, or the window passed: finalizing either way
	// (finish tells which by the records pending).
	_, err = e.jobs.setStatus(ctx, j, Finalizing, InProgress)
	if err == nil {
		err = e.reload(ctx, j)
	}
	return err
}

// runRecord calls for one record until it succeeds, fails for good, or
// runs out of attempts. It holds a pacer slot on entry and releases it.
// ok is false when ctx ended first: the record stays pending.
func (e *Engine) runRecord(ctx context.Context, kind Kind, j *Job, pacer *Pacer, attempts int, rec Record) (d done, ok bool) {
	retries := 0
	for attempt := 1; ; attempt++ {
		res := kind.Run(ctx, j, rec)
		pacer.Release(res.Throttled, res.RetryAfter)
		if ctx.Err() != nil {
			return d, false
		}
		retries += max(res.Attempts, 1) - 1
		if !res.Retry || attempt >= attempts {
			return done{idx: rec.Index, failed: res.Failed, line: res.Line, retries: retries,
				in: res.InputTokens, out: res.OutputTokens}, true
		}
		retries++
		wait := res.RetryAfter
		if wait <= 0 {
			// Full jitter, doubling per attempt: retries of many records
			// spread out rather than arriving together.
			wait = time.Duration(rand.Int64N(int64(e.opt.RetryBackoff<<min(attempt-1, 5)) + 1))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return d, false
		case <-t.C:
		}
		if pacer.Acquire(ctx) != nil {
			return d, false
		}
	}
}

// commitBatch is how many results one transaction commits at most, and
// commitEvery how long a result waits for company.
const (
	commitBatch = 256
	commitEvery = 100 * time.Millisecond
)

// commitLoop commits results until the channel closes.
func (e *Engine) commitLoop(ctx context.Context, j *Job, p *progress, results <-chan done) error {
	var pending []done
	var failure error
	finished := j.Completed + j.Failed
	flush := func() {
		if len(pending) == 0 || failure != nil {
			pending = pending[:0]
			return
		}
		c, f, err := e.jobs.commit(context.WithoutCancel(ctx), j.ID, pending)
		if err != nil {
			failure = err
		} else {
			e.completed.Add(c)
			e.failed.Add(f)
			for _, d := range pending {
				e.retried.Add(int64(d.retries))
			}
		}
		finished += c + f
		p.add(finished)
		pending = pending[:0]
	}
	t := time.NewTicker(commitEvery)
	defer t.Stop()
	for {
		select {
		case d, ok := <-results:
			if !ok {
				flush()
				return failure
			}
			pending = append(pending, d)
			if len(pending) >= commitBatch {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

// finish writes the job's outputs and ends it: cancelled after a cancel,
// expired when its window passed with records pending, else completed.
func (e *Engine) finish(ctx context.Context, kind Kind, j *Job) error {
	to := Completed
	switch {
	case j.Status == Cancelling:
		to = Cancelled
	case j.Pending() > 0:
		to = Expired
	}
	out, err := kind.Finish(ctx, j, e.entries(ctx, kind, j))
	if err != nil {
		return err
	}
	if err := e.stop(ctx, kind, j); err != nil {
		return err
	}
	return e.jobs.finished(ctx, j, to, out)
}

// entries reads the job's input again beside its stored records, both in
// input order, and yields one Entry per record.
func (e *Engine) entries(ctx context.Context, kind Kind, j *Job) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		in, err := kind.Open(ctx, j)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		defer in.Close()
		rows, err := e.jobs.db.QueryContext(ctx, `SELECT idx, failed, line FROM batch_records WHERE job_id = ? ORDER BY idx`, j.ID)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		defer rows.Close()
		next := func() (idx int, failed bool, line []byte, ok bool) {
			if !rows.Next() {
				return 0, false, nil, false
			}
			var f int
			if rows.Scan(&idx, &f, &line) != nil {
				return 0, false, nil, false
			}
			return idx, f == 1, line, true
		}
		ridx, rfailed, rline, rok := next()
		stopped := false
		err = scan(in, e.limits(kind, j).MaxLine, func(idx, n int, line []byte) error {
			en := Entry{Index: idx, Line: n, Input: line}
			if rok && ridx == idx {
				en.Done, en.Failed, en.Output = true, rfailed, rline
				ridx, rfailed, rline, rok = next()
			}
			if !yield(en, nil) {
				stopped = true
				return errStop
			}
			return nil
		})
		if err == nil {
			err = rows.Err()
		}
		if err != nil && !stopped {
			yield(Entry{}, err)
		}
	}
}
