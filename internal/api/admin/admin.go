// Package admin is the control-plane REST API under /api/v1: keys and
// usage today. The junction CLI is a client of it.
package admin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/audit"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Handler serves the admin API.
type Handler struct {
	Keys *keys.Store
	DB   *sql.DB
	// AWSCreds issues AWS access keys for keys; nil leaves those routes
	// out.
	AWSCreds *awscreds.Store
	// Now returns the current time; tests may fix it.
	Now func() time.Time
	// Catalog prices the advisor's options; nil means the built-in one.
	Catalog *ledger.Catalog
	// Governance serves the budget routes; nil leaves them out.
	Governance *governance.Governor
	// Audit serves the audit log; nil leaves it out.
	Audit *audit.Log
}

// Register adds the routes to mux, each wrapped by auth (admin keys only).
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/keys", auth(http.HandlerFunc(h.createKey)))
	mux.Handle("GET /api/v1/keys", auth(http.HandlerFunc(h.listKeys)))
	mux.Handle("DELETE /api/v1/keys/{id}", auth(http.HandlerFunc(h.revokeKey)))
	mux.Handle("GET /api/v1/usage", auth(http.HandlerFunc(h.usage)))
	mux.Handle("GET /api/v1/usage/records", auth(http.HandlerFunc(h.records)))
	h.registerOrg(mux, auth)
	h.registerGovernance(mux, auth)
	if h.AWSCreds != nil {
		h.registerAWSCredentials(mux, auth)
	}
}

// WriteError writes e as {"error":{"message","type","param"}}.
func WriteError(w http.ResponseWriter, _ *http.Request, e *llm.Error) {
	writeJSON(w, e.Status, map[string]any{"error": map[string]any{"message": e.Message, "type": e.Type, "param": e.Param}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// CreateKeyRequest is the body of POST /api/v1/keys.
type CreateKeyRequest struct {
	Name  string            `json:"name"`
	Tags  map[string]string `json:"tags"`
	Admin bool              `json:"admin"`
	// Team and Project (optional) must exist; they become the tags team
	// and project of the key's requests.
	Team    string `json:"team,omitempty"`
	Project string `json:"project,omitempty"`
	// RPM and TPM are the key's own rate limits (optional).
	RPM int64 `json:"rpm,omitempty"`
	TPM int64 `json:"tpm,omitempty"`
}

// CreateKeyResponse is the answer: the key's record and, once, its
// plaintext.
type CreateKeyResponse struct {
	*keys.Key
	Secret string `json:"key"`
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, 64<<10)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	var req CreateKeyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		WriteError(w, r, llm.BadRequest("", "request body is not valid JSON: %v", err))
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		WriteError(w, r, llm.BadRequest("name", "name: required"))
		return
	}
	if err := keys.ValidateTags(req.Tags); err != nil {
		WriteError(w, r, llm.BadRequest("tags", "tags: %v", err))
		return
	}
	k, secret, err := h.Keys.CreateKey(r.Context(), keys.Spec{Name: req.Name, Tags: req.Tags, Admin: req.Admin,
		Team: req.Team, Project: req.Project, RPM: req.RPM, TPM: req.TPM})
	if errors.Is(err, keys.ErrMissing) {
		WriteError(w, r, llm.BadRequest("team", "%v", err))
		return
	}
	if err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	writeJSON(w, http.StatusCreated, CreateKeyResponse{Key: k, Secret: secret})
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	list, err := h.Keys.List(r.Context())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	if list == nil {
		list = []*keys.Key{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": list})
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if me := api.InfoFrom(r.Context()).Key; me != nil && me.ID == id {
		WriteError(w, r, llm.BadRequest("id", "a key cannot revoke itself; use another admin key"))
		return
	}
	switch err := h.Keys.Revoke(r.Context(), id); {
	case errors.Is(err, keys.ErrNotFound):
		WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "key %q does not exist", id))
	case err != nil:
		WriteError(w, r, llm.AsError(err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// UsageResponse is the answer of GET /api/v1/usage.
type UsageResponse struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	GroupBy string    `json:"group_by"`
	// Tags is the filter asked for (?tag=team=search), if any.
	Tags  map[string]string `json:"tags,omitempty"`
	Rows  []ledger.Row      `json:"rows"`
	Total ledger.Row        `json:"total"`
	// Hosting is the instance time of self-hosted endpoints in the
	// window, with its cost, beside the per-token spending above.
	Hosting []hosting.HostingRow `json:"hosting"`
	// HostingCostUSD sums Hosting.
	HostingCostUSD float64 `json:"hosting_cost_usd"`
	// ReservedCapacity is the cost of teams' reserved capacity in the
	// window, and ReservedCapacityCostUSD its sum.
	ReservedCapacity        []governance.ReservedRow `json:"reserved_capacity"`
	ReservedCapacityCostUSD float64                  `json:"reserved_capacity_cost_usd"`
	// TotalCostUSD is per-token plus hosting plus reserved capacity.
	TotalCostUSD float64 `json:"total_cost_usd"`
}

func (h *Handler) window(r *http.Request) (time.Time, time.Time, *llm.Error) {
	now := h.now()
	from, err := ParseTime(r.URL.Query().Get("from"), now, now.Add(-24*time.Hour))
	if err != nil {
		return time.Time{}, time.Time{}, llm.BadRequest("from", "from: %v", err)
	}
	to, err := ParseTime(r.URL.Query().Get("to"), now, now.Add(time.Second))
	if err != nil {
		return time.Time{}, time.Time{}, llm.BadRequest("to", "to: %v", err)
	}
	if !from.Before(to) {
		return time.Time{}, time.Time{}, llm.BadRequest("from", "from must be before to")
	}
	return from, to, nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request) {
	from, to, e := h.window(r)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	q := ledger.Query{From: from, To: to, GroupBy: r.URL.Query().Get("group_by")}
	for _, t := range r.URL.Query()["tag"] {
		name, value, ok := strings.Cut(t, "=")
		if !ok || name == "" {
			WriteError(w, r, llm.BadRequest("tag", "tag %q: use NAME=VALUE (team=search)", t))
			return
		}
		if q.Tags == nil {
			q.Tags = map[string]string{}
		}
		q.Tags[name] = value
	}
	out, err := Usage(r.Context(), h.DB, q)
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Usage answers a usage query as GET /api/v1/usage does: per-token usage
// by group with its total, and beside it the instance time of self-hosted
// endpoints and the reserved capacity in the window. An empty GroupBy
// means model. With Tags set (a team's own view), hosting is left out,
// since instance time belongs to no team, and reserved capacity keeps the
// rows of the team named by the tag team.
func Usage(ctx context.Context, db *sql.DB, q ledger.Query) (*UsageResponse, error) {
	if q.GroupBy == "" {
		q.GroupBy = "model"
	}
	if err := ledger.ValidGroupBy(q.GroupBy); err != nil {
		return nil, llm.BadRequest("group_by", "%v", err)
	}
	rows, err := ledger.Report(ctx, db, q)
	if err != nil {
		return nil, err
	}
	total := ledger.Row{Group: "total"}
	var latencySum float64
	for _, row := range rows {
		total.Requests += row.Requests
		total.Errors += row.Errors
		total.InputTokens += row.InputTokens
		total.OutputTokens += row.OutputTokens
		total.CachedTokens += row.CachedTokens
		total.CostUSD += row.CostUSD
		total.UnpricedRequests += row.UnpricedRequests
		total.SavedUSD += row.SavedUSD
		total.RoutedCounterfactualUSD += row.RoutedCounterfactualUSD
		latencySum += row.AvgLatencyMS * float64(row.Requests)
	}
	if total.Requests > 0 {
		total.AvgLatencyMS = latencySum / float64(total.Requests)
	}
	if q.Percentiles != ledger.PercentilesNone {
		byGroup, all, err := ledger.Latency(ctx, db, q)
		if err != nil {
			return nil, err
		}
		total.P50LatencyMS, total.P99LatencyMS = all.P50MS, all.P99MS
		for i := range rows {
			if p, ok := byGroup[rows[i].Group]; ok {
				rows[i].P50LatencyMS, rows[i].P99LatencyMS = p.P50MS, p.P99MS
			}
		}
	}
	hosted := []hosting.HostingRow{}
	if len(q.Tags) == 0 {
		if hosted, err = hosting.HostingReport(ctx, db, q.From, q.To); err != nil {
			return nil, err
		}
	}
	reserved, err := governance.ReservedReport(ctx, db, q.From, q.To)
	if err != nil {
		return nil, err
	}
	if len(q.Tags) > 0 {
		mine := []governance.ReservedRow{}
		for _, rr := range reserved {
			if team, ok := q.Tags["team"]; ok && rr.Team == team {
				mine = append(mine, rr)
			}
		}
		reserved = mine
	}
	out := &UsageResponse{From: q.From.UTC(), To: q.To.UTC(), GroupBy: q.GroupBy, Tags: q.Tags, Rows: rows, Total: total,
		Hosting: hosted, ReservedCapacity: reserved}
	for _, hr := range hosted {
		out.HostingCostUSD += hr.CostUSD
	}
	for _, rr := range reserved {
		out.ReservedCapacityCostUSD += rr.CostUSD
	}
	out.TotalCostUSD = total.CostUSD + out.HostingCostUSD + out.ReservedCapacityCostUSD
	return out, nil
}

func (h *Handler) records(w http.ResponseWriter, r *http.Request) {
	from, to, e := h.window(r)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			WriteError(w, r, llm.BadRequest("limit", "limit: must be a number from 1 to 10000"))
			return
		}
		limit = n
	}
	recs, err := ledger.Records(r.Context(), h.DB, from, to, limit)
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	if recs == nil {
		recs = []ledger.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
}

// ParseTime reads an RFC 3339 time, a date (2006-01-02), unix seconds, or
// a duration back from now ("24h", "7d"). Empty gives def.
func ParseTime(s string, now, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	if d, err := ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date, unix seconds, or a duration back from now (24h, 7d)", s)
}

// ParseDuration is time.ParseDuration plus a "d" suffix for days.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, err
}
