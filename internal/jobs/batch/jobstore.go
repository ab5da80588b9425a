package batch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned for a job or file that does not exist or that
// the asking key may not see.
var ErrNotFound = errors.New("not found")

// jobs is the batch_jobs table.
type jobs struct{ db *sql.DB }

const jobColumns = `id, kind, key_id, key_name, tags, spec, model, status, errors, output, times,
	total, completed, failed, retries, input_tokens, output_tokens, created_at, expires_at`

type rowScanner interface{ Scan(...any) error }

func scanJob(r rowScanner) (*Job, error) {
	var j Job
	var tags, spec, errs, output, times string
	var created, expires int64
	err := r.Scan(&j.ID, &j.Kind, &j.KeyID, &j.KeyName, &tags, &spec, &j.Model, &j.Status, &errs, &output, &times,
		&j.Total, &j.Completed, &j.Failed, &j.Retries, &j.InputTokens, &j.OutputTokens, &created, &expires)
	if err != nil {
		return nil, err
	}
	j.Spec = json.RawMessage(spec)
	json.Unmarshal([]byte(tags), &j.Tags)
	if errs != "" {
		json.Unmarshal([]byte(errs), &j.Errors)
	}
	json.Unmarshal([]byte(output), &j.Output)
	json.Unmarshal([]byte(times), &j.Times)
	if j.Times == nil {
		j.Times = map[Status]int64{}
	}
	j.CreatedAt, j.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
	return &j, nil
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (s jobs) insert(ctx context.Context, j *Job) error {
	tags := j.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	now := time.Now().UnixMilli()
	_, err := s.db.ExecContext(ctx, `INSERT INTO batch_jobs(id, kind, key_id, key_name, tags, spec, model, status, times, created_at, updated_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.KeyID, j.KeyName, mustJSON(tags), string(j.Spec), j.Model, j.Status, mustJSON(j.Times),
		j.CreatedAt.UnixMilli(), now, j.ExpiresAt.UnixMilli())
	return err
}

func (s jobs) get(ctx context.Context, id string) (*Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM batch_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return j, err
}

// Filter selects jobs for List.
type Filter struct {
	// Kind, when set, lists only jobs of that kind.
	Kind string
	// KeyID, when set, lists only that key's jobs.
	KeyID string
	// After is a cursor: list the jobs made before the job with this id.
	After string
	// Limit bounds the page; 0 means 20.
	Limit int
}

// list returns jobs newest first, and whether there are more.
func (s jobs) list(ctx context.Context, f Filter) ([]*Job, bool, error) {
	if f.Limit <= 0 {
		f.Limit = 20
	}
	var where []string
	var args []any
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.KeyID != "" {
		where, args = append(where, "key_id = ?"), append(args, f.KeyID)
	}
	if f.After != "" {
		var created int64
		err := s.db.QueryRowContext(ctx, `SELECT created_at FROM batch_jobs WHERE id = ?`, f.After).Scan(&created)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, false, fmt.Errorf("after: %w", ErrNotFound)
			}
			return nil, false, err
		}
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, created, created, f.After)
	}
	q := `SELECT ` + jobColumns + ` FROM batch_jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, q, append(args, f.Limit+1)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, j)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, rows.Err()
}

// setStatus moves a job from one of the statuses in from to status to,
// noting when, and reports whether it moved.
func (s jobs) setStatus(ctx context.Context, j *Job, to Status, from ...Status) (bool, error) {
	times := map[Status]int64{}
	for k, v := range j.Times {
		times[k] = v
	}
	times[to] = time.Now().Unix()
	q := `UPDATE batch_jobs SET status = ?, times = ?, updated_at = ? WHERE id = ? AND status IN (?` + strings.Repeat(", ?", len(from)-1) + `)`
	args := []any{to, mustJSON(times), time.Now().UnixMilli(), j.ID}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	if n == 1 {
		j.Status, j.Times = to, times
	}
	return n == 1, nil
}

// validated records a job's validation: its record count and model, or
// its errors and status failed.
func (s jobs) validated(ctx context.Context, j *Job) error {
	_, err := s.db.ExecContext(ctx, `UPDATE batch_jobs SET total = ?, model = ?, errors = ?, updated_at = ? WHERE id = ?`,
		j.Total, j.Model, errorsJSON(j.Errors), time.Now().UnixMilli(), j.ID)
	return err
}

func errorsJSON(e []LineError) string {
	if len(e) == 0 {
		return ""
	}
	return mustJSON(e)
}

// finished records a job's outputs and final status.
func (s jobs) finished(ctx context.Context, j *Job, to Status, output map[string]string) error {
	j.Times[to] = time.Now().Unix()
	_, err := s.db.ExecContext(ctx, `UPDATE batch_jobs SET status = ?, output = ?, times = ?, owner = '', lease_until = 0, updated_at = ? WHERE id = ?`,
		to, mustJSON(output), mustJSON(j.Times), time.Now().UnixMilli(), j.ID)
	if err == nil {
		j.Status, j.Output = to, output
	}
	return err
}

// runnable lists the jobs not yet done whose lease has lapsed (or is
// this owner's), oldest first.
func (s jobs) runnable(ctx context.Context, owner string, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM batch_jobs
		WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling') AND (lease_until < ? OR owner = ?)
		ORDER BY created_at, id LIMIT ?`, now.UnixMilli(), owner, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// lease takes (or renews) a job's lease for owner until until, when it
// has lapsed by now or is owner's already.
func (s jobs) lease(ctx context.Context, id, owner string, now, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE batch_jobs SET owner = ?, lease_until = ? WHERE id = ? AND (lease_until < ? OR owner = ?)`,
		owner, until.UnixMilli(), id, now.UnixMilli(), owner)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// release gives up owner's lease on a job.
func (s jobs) release(ctx context.Context, id, owner string) {
	s.db.ExecContext(ctx, `UPDATE batch_jobs SET owner = '', lease_until = 0 WHERE id = ? AND owner = ?`, id, owner)
}

// done is one finished record, ready to commit.
type done struct {
	idx       int
	failed    bool
	line      []byte
	retries   int
	in, out   int
	committed func()
}

// commit stores finished records and adds them to the job's counters in
// one transaction. A record already stored (a run that crashed after
// committing it) is neither stored nor counted again.
func (s jobs) commit(ctx context.Context, jobID string, batch []done) (completed, failed int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO batch_records(job_id, idx, failed, line) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, 0, err
	}
	defer stmt.Close()
	var retries, in, out int64
	for _, d := range batch {
		f := 0
		if d.failed {
			f = 1
		}
		res, err := stmt.ExecContext(ctx, jobID, d.idx, f, string(d.line))
		if err != nil {
			return 0, 0, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		if d.failed {
			failed++
		} else {
			completed++
		}
		retries += int64(d.retries)
		in += int64(d.in)
		out += int64(d.out)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE batch_jobs SET completed = completed + ?, failed = failed + ?, retries = retries + ?,
		input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, updated_at = ? WHERE id = ?`,
		completed, failed, retries, in, out, time.Now().UnixMilli(), jobID); err != nil {
		return 0, 0, err
	}
	return completed, failed, tx.Commit()
}

// doneSet returns the indexes of a job's finished records.
func (s jobs) doneSet(ctx context.Context, jobID string, total int64) (bitset, error) {
	b := newBitset(int(total))
	rows, err := s.db.QueryContext(ctx, `SELECT idx FROM batch_records WHERE job_id = ?`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			return nil, err
		}
		b.set(i)
	}
	return b, rows.Err()
}

// bitset is a set of record indexes: one bit per record, so that a
// resumed job of ten million records holds 1.25 MB.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }
