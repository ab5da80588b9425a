package hosting

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// One replica reconciles hosting at a time: the one whose name the
// hosting lease in the store carries, until the lease expires. The holder
// renews it every third of its time to live; a replica that stops renewing
// (it died, or lost the database) is replaced by another within one time
// to live. A holder that fails to renew stops reconciling (and stops its
// model servers) before its lease can have passed to another replica.

// Lease is this replica's side of the hosting lease, wherever it is kept:
// a row in the store (the default), or a Kubernetes Lease object when the
// Kubernetes runtime is used (Options.Lease).
type Lease interface {
	// Acquire takes or renews the lease and reports whether this replica
	// holds it now. It must return within the lease's time to live.
	Acquire(ctx context.Context) (bool, error)
	// Release gives the lease up, if this replica holds it, so that
	// another replica takes over at once.
	Release()
}

// lease is the hosting lease as a row of the store's hosting_lease table.
type lease struct {
	db     *sql.DB
	holder string
	ttl    time.Duration
}

const leaseName = "hosting"

func newLease(db *sql.DB, holder string, ttl time.Duration) *lease {
	if holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		crand.Read(b[:])
		holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return &lease{db: db, holder: holder, ttl: ttl}
}

// Acquire takes or renews the lease and reports whether this replica
// holds it now.
func (l *lease) Acquire(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	now := time.Now()
	if _, err := l.db.ExecContext(ctx, `INSERT INTO hosting_lease(name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE hosting_lease.holder = excluded.holder OR hosting_lease.expires_at < ?`,
		leaseName, l.holder, now.Add(l.ttl).UnixMilli(), now.UnixMilli()); err != nil {
		return false, err
	}
	var holder string
	if err := l.db.QueryRowContext(ctx, `SELECT holder FROM hosting_lease WHERE name = ?`, leaseName).Scan(&holder); err != nil {
		return false, err
	}
	return holder == l.holder, nil
}

// Release gives the lease up, so that another replica takes over at once.
func (l *lease) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
	defer cancel()
	l.db.ExecContext(ctx, `DELETE FROM hosting_lease WHERE name = ? AND holder = ?`, leaseName, l.holder)
}

// Holder reports whether this replica reconciles hosting now.
func (c *reconciler) Holder() bool {
	c.ownMu.Lock()
	defer c.ownMu.Unlock()
	return c.own != nil
}

// leaseLoop keeps the lease: it renews it while held and takes it when
// it is free, starting or ending this replica's term as reconciler.
func (c *reconciler) leaseLoop() {
	t := time.NewTicker(c.opts.LeaseTTL / 3)
	defer t.Stop()
	lastRenew := time.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		held, err := c.lease.Acquire(c.ctx)
		if c.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && held:
			lastRenew = time.Now()
			if !c.Holder() {
				if err := c.lead(c.ctx); err != nil && c.log != nil {
					c.log.Error("hosting: cannot take over as reconciler", "err", err)
				}
			}
		case c.Holder() && (err == nil || time.Since(lastRenew) > c.opts.LeaseTTL/2):
			// Lost it, or could not renew it for half its life: stop
			// before another replica may take it.
			if c.log != nil {
				c.log.Warn("hosting: lease lost; no longer reconciling", "err", err)
			}
			c.abdicate()
		}
	}
}
