package batch

import (
	"context"
	"errors"
)

// Most kinds run their records under the engine's options, through a
// pacer per model shared across jobs, with nothing to set up. A kind whose
// jobs carry their own limits, or need something running while their
// records are (SageMaker's batch transform starts instances of a model
// for each job), implements the optional interfaces here as well.

// Limits are what a job sets for itself in place of the engine's options.
// A zero field keeps the engine's.
type Limits struct {
	// Concurrency is the most of the job's records in flight. A job with
	// a concurrency of its own gets a pacer of its own.
	Concurrency int
	// MaxAttempts bounds the calls for a record whose result asks for a
	// retry.
	MaxAttempts int
	// MaxLine bounds one line of the job's input, in bytes (the engine's
	// is 64 MB).
	MaxLine int
}

// Limiter is a Kind whose jobs set their own Limits.
type Limiter interface {
	Limits(j *Job) Limits
}

// Starter is a Kind whose jobs need something running while their records
// run.
type Starter interface {
	// Start is called before a job's records run, each time a replica
	// takes the job up in progress (so again after a restart), and returns
	// once what they need is ready. A *LineError fails the job with it;
	// another error leaves the job to be tried again later.
	Start(ctx context.Context, j *Job) error
	// Stop releases what Start started. It is called before the job ends,
	// whichever way it ends, and may be called more than once, or without
	// a Start before it.
	Stop(ctx context.Context, j *Job) error
}

// limits returns the limits job j runs under.
func (e *Engine) limits(kind Kind, j *Job) Limits {
	var l Limits
	if lk, ok := kind.(Limiter); ok {
		l = lk.Limits(j)
	}
	if l.MaxAttempts <= 0 {
		l.MaxAttempts = e.opt.MaxAttempts
	}
	if l.MaxLine <= 0 {
		l.MaxLine = maxLine
	}
	return l
}

// jobPacer returns the pacer for job j's records: the model's, shared with
// other jobs, unless the job sets its own concurrency.
func (e *Engine) jobPacer(kind Kind, j *Job) *Pacer {
	if c := e.limits(kind, j).Concurrency; c > 0 {
		return NewPacer(c, 0)
	}
	return e.pacer(j.Model)
}

// start runs the kind's Start for job j, if it has one. A *LineError
// fails the job and is not returned.
func (e *Engine) start(ctx context.Context, kind Kind, j *Job) (failed bool, err error) {
	s, ok := kind.(Starter)
	if !ok {
		return false, nil
	}
	err = s.Start(ctx, j)
	var le *LineError
	if err == nil || !errors.As(err, &le) || ctx.Err() != nil {
		return false, err
	}
	if err := e.stop(ctx, kind, j); err != nil {
		return false, err
	}
	j.Errors = []LineError{*le}
	if err := e.jobs.validated(ctx, j); err != nil {
		return false, err
	}
	moved, err := e.jobs.setStatus(ctx, j, Failed, InProgress, Cancelling)
	if err == nil && moved {
		err = e.jobs.finished(ctx, j, Failed, map[string]string{})
	}
	return true, err
}

// stop runs the kind's Stop for job j, if it has one.
func (e *Engine) stop(ctx context.Context, kind Kind, j *Job) error {
	if s, ok := kind.(Starter); ok {
		return s.Stop(ctx, j)
	}
	return nil
}
