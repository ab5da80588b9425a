package admin

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/audit"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// registerGovernance adds the budget and audit-log routes.
func (h *Handler) registerGovernance(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	if h.Governance != nil {
		mux.Handle("POST /api/v1/budgets", auth(http.HandlerFunc(h.createBudget)))
		mux.Handle("GET /api/v1/budgets", auth(http.HandlerFunc(h.listBudgets)))
		mux.Handle("GET /api/v1/budgets/{id}", auth(http.HandlerFunc(h.getBudget)))
		mux.Handle("PUT /api/v1/budgets/{id}", auth(http.HandlerFunc(h.updateBudget)))
		mux.Handle("DELETE /api/v1/budgets/{id}", auth(http.HandlerFunc(h.deleteBudget)))
	}
	if h.Audit != nil {
		mux.Handle("GET /api/v1/audit", auth(http.HandlerFunc(h.listAudit)))
	}
}

// BudgetRequest is the body of POST /api/v1/budgets and PUT
// /api/v1/budgets/{id}.
type BudgetRequest struct {
	Scope    string  `json:"scope"`
	Period   string  `json:"period"`
	LimitUSD float64 `json:"limit_usd"`
	Mode     string  `json:"mode,omitempty"`
	Webhook  string  `json:"webhook,omitempty"`
}

func (b BudgetRequest) config() governance.BudgetConfig {
	return governance.BudgetConfig{Scope: b.Scope, Period: b.Period, LimitUSD: b.LimitUSD, Mode: b.Mode, Webhook: b.Webhook}
}

// BudgetList is the answer of GET /api/v1/budgets.
type BudgetList struct {
	Budgets []governance.BudgetView `json:"budgets"`
}

func budgetError(err error, id string) *llm.Error {
	var inv *governance.InvalidError
	switch {
	case errors.As(err, &inv):
		return llm.BadRequest("", "%v", err)
	case errors.Is(err, governance.ErrNotFound):
		return llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "budget %q does not exist", id)
	case errors.Is(err, governance.ErrReadOnly):
		return llm.Errorf(http.StatusConflict, llm.ErrInvalidRequest, "budget %q is defined in the config file (governance.budgets); change it there", id)
	}
	return llm.AsError(err)
}

func (h *Handler) createBudget(w http.ResponseWriter, r *http.Request) {
	var req BudgetRequest
	if e := decode(w, r, &req); e != nil {
		WriteError(w, r, e)
		return
	}
	v, err := h.Governance.CreateBudget(r.Context(), req.config())
	if err != nil {
		WriteError(w, r, budgetError(err, ""))
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (h *Handler) listBudgets(w http.ResponseWriter, r *http.Request) {
	list, err := h.Governance.Budgets(r.Context())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, BudgetList{Budgets: list})
}

func (h *Handler) getBudget(w http.ResponseWriter, r *http.Request) {
	v, err := h.Governance.Budget(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, r, budgetError(err, r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handler) updateBudget(w http.ResponseWriter, r *http.Request) {
	var req BudgetRequest
	if e := decode(w, r, &req); e != nil {
		WriteError(w, r, e)
		return
	}
	before, after, err := h.Governance.UpdateBudget(r.Context(), r.PathValue("id"), req.config())
	if before.ID != "" {
		audit.SetBefore(r, before)
	}
	if err != nil {
		WriteError(w, r, budgetError(err, r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, after)
}

func (h *Handler) deleteBudget(w http.ResponseWriter, r *http.Request) {
	before, err := h.Governance.DeleteBudget(r.Context(), r.PathValue("id"))
	if before.ID != "" {
		audit.SetBefore(r, before)
	}
	if err != nil {
		WriteError(w, r, budgetError(err, r.PathValue("id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AuditList is the answer of GET /api/v1/audit.
type AuditList struct {
	Entries []audit.Entry `json:"entries"`
}

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) {
	list, e := h.AuditEntries(r)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, AuditList{Entries: list})
}

// AuditEntries is what GET /api/v1/audit answers for r's query (since,
// default 24 hours back; limit, default 100); the console shows it.
func (h *Handler) AuditEntries(r *http.Request) ([]audit.Entry, *llm.Error) {
	now := h.now()
	since, err := ParseTime(r.URL.Query().Get("since"), now, now.Add(-24*time.Hour))
	if err != nil {
		return nil, llm.BadRequest("since", "since: %v", err)
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return nil, llm.BadRequest("limit", "limit: must be a number from 1 to 10000")
		}
		limit = n
	}
	list, err := h.Audit.List(r.Context(), since, limit)
	if err != nil {
		return nil, llm.AsError(err)
	}
	return list, nil
}
