// Package batch is Junction's one engine for batch jobs: a job is a
// durable record in the store with its input (a JSONL object read as a
// stream), the output line of every record it has finished, and counters;
// workers take records in input order, call the model through the
// gateway (so routes, guardrails, budgets and the ledger apply), and
// commit results in small transactions. A job resumes after a restart
// where it stopped, and each record's line is written to the job's output
// exactly once: the output is assembled from the stored lines when the
// job finishes.
//
// What a job does with its records is its Kind: the OpenAI Batch API
// (openai.go), Bedrock's model invocation jobs (internal/api/jobs) and
// SageMaker's batch transform (internal/jobs/batch/transform, which also sets
// its own limits and starts instances for each job: hooks.go). The
// package is not an HTTP surface; internal/api/openai, internal/api/jobs
// and internal/api/transform serve it.
package batch

import (
	"context"
	"encoding/json"
	"io"
	"iter"
	"time"
)

// Surface is the name batch records carry in the ledger and metrics, so
// that `junction usage` shows jobs as their own path.
const Surface = "batch"

// Status is a job's state. The names are the OpenAI Batch API's; other
// kinds map them to their own.
type Status string

// A job moves validating → in_progress → finalizing → completed, or ends
// failed (its input did not validate), expired (its window passed with
// records pending) or cancelled (after cancelling).
const (
	Validating Status = "validating"
	InProgress Status = "in_progress"
	Finalizing Status = "finalizing"
	Completed  Status = "completed"
	Failed     Status = "failed"
	Expired    Status = "expired"
	Cancelling Status = "cancelling"
	Cancelled  Status = "cancelled"
)

// Terminal reports whether a job in status s is done for good.
func (s Status) Terminal() bool {
	switch s {
	case Completed, Failed, Expired, Cancelled:
		return true
	}
	return false
}

// Job is a batch job as stored.
type Job struct {
	ID   string
	Kind string
	// KeyID and KeyName are the key that made the job; its records are
	// called and billed as that key's.
	KeyID, KeyName string
	Tags           map[string]string
	// Spec is the job's request, in its kind's shape.
	Spec json.RawMessage
	// Model is what the records ask for, known once the input validated.
	Model  string
	Status Status
	// Errors are why the job failed validation.
	Errors []LineError
	// Output is what the kind made when the job finished (file ids, URIs).
	Output map[string]string
	// Times holds when the job entered each status, in Unix seconds.
	Times map[Status]int64
	// Total is the number of records; Completed and Failed those done.
	Total, Completed, Failed int64
	// Retries counts calls beyond one per record (429s, 5xx).
	Retries                   int64
	InputTokens, OutputTokens int64
	CreatedAt, ExpiresAt      time.Time
}

// Pending is the number of records not yet done.
func (j *Job) Pending() int64 { return max(j.Total-j.Completed-j.Failed, 0) }

// LineError is a problem with one line of a job's input.
type LineError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	// Line is the input's line number, from 1; 0 when not about a line.
	Line int `json:"line,omitempty"`
}

// Error implements error.
func (e *LineError) Error() string { return e.Message }

// Record is one record handed to a kind to run.
type Record struct {
	// Index is the record's place among the input's records, from 0.
	Index int
	// Input is its input line.
	Input []byte
}

// Result is what came of one call for a record.
type Result struct {
	// Line is the record's output line, without a newline.
	Line []byte
	// Failed puts the line in the job's errors rather than its output.
	Failed bool
	// Retry asks for another attempt: the upstream answered 429 or 5xx.
	// The engine retries up to batch.max_attempts, then keeps Line.
	Retry bool
	// Throttled is a 429: the pacer backs off, for RetryAfter if given.
	Throttled  bool
	RetryAfter time.Duration
	// Attempts counts the upstream calls the gateway made (its own
	// failover and retries); 0 counts as 1.
	Attempts                  int
	InputTokens, OutputTokens int
}

// Entry is one record of a finishing job, in input order.
type Entry struct {
	Index int
	// Line is the input line number, from 1.
	Line  int
	Input []byte
	// Done is set when the record finished; Output is its line, Failed
	// whether it went to the errors.
	Done   bool
	Failed bool
	Output []byte
}

// Kind is what jobs of one kind do with their records.
type Kind interface {
	// Open opens the job's input.
	Open(ctx context.Context, job *Job) (io.ReadCloser, error)
	// Validate returns a check for the job's records, called for each in
	// order with its input line number n (from 1); it returns the model
	// the record asks for. The engine fails the job on the first error.
	Validate(job *Job) func(n int, input []byte) (model string, err *LineError)
	// Run makes one call for the record. It is called again for a Retry
	// result, up to the engine's attempts.
	Run(ctx context.Context, job *Job, rec Record) Result
	// Finish writes the job's outputs from its records, in input order,
	// and returns what to keep in Job.Output. It may run again after a
	// crash, so it writes the same outputs each time.
	Finish(ctx context.Context, job *Job, entries iter.Seq2[Entry, error]) (map[string]string, error)
}
