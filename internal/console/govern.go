package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/audit"
)

// The Keys page edits what governs spending, as the admin API does: a
// key's own rate limits (PUT /api/v1/keys/{id}/limits) and the stored
// budgets (POST, PUT and DELETE /api/v1/budgets). Each change goes
// through the same store call as the API, with the state before it in
// the audit log; budgets from the config file are shown, not edited.

// setLimits sets a key's own requests and tokens per minute.
func (h *Handler) setLimits(w http.ResponseWriter, r *http.Request) {
	rpm, err1 := formInt(r, "rpm")
	tpm, err2 := formInt(r, "tpm")
	if err := errors.Join(err1, err2); err != nil {
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, err.Error())
		return
	}
	id := r.PathValue("id")
	before, _, err := h.Keys.SetLimits(r.Context(), id, rpm, tpm)
	if before != nil {
		audit.SetBefore(r, before)
	}
	switch {
	case errors.Is(err, keys.ErrNotFound):
		h.renderKeys(w, r, http.StatusNotFound, keysData{}, "Key "+id+" does not exist.")
	case errors.Is(err, keys.ErrInvalid):
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, err.Error())
	case err != nil:
		h.renderKeys(w, r, http.StatusInternalServerError, keysData{}, err.Error())
	default:
		http.Redirect(w, r, "/ui/keys#key-"+id, http.StatusSeeOther)
	}
}

// formInt reads a whole number of at least 0 from a form field; empty
// is 0.
func formInt(r *http.Request, field string) (int64, error) {
	s := strings.TrimSpace(r.PostFormValue(field))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New(strings.ToUpper(field) + ": a whole number of at least 0 (0 leaves the configured limit), not " + strconv.Quote(s))
	}
	return n, nil
}

// budgetForm reads a budget from the form.
func budgetForm(r *http.Request) (governance.BudgetConfig, error) {
	b := governance.BudgetConfig{Scope: strings.TrimSpace(r.PostFormValue("scope")), Period: r.PostFormValue("period"),
		Mode: r.PostFormValue("mode"), Webhook: strings.TrimSpace(r.PostFormValue("webhook"))}
	s := strings.TrimPrefix(strings.TrimSpace(r.PostFormValue("limit_usd")), "$")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return b, errors.New("Limit: a number of dollars, such as 250 or 12.50, not " + strconv.Quote(s))
	}
	b.LimitUSD = v
	return b, nil
}

// budgetFailure renders the Keys page with what went wrong with a budget
// change, under the status the admin API would answer.
func (h *Handler) budgetFailure(w http.ResponseWriter, r *http.Request, id string, err error) {
	var inv *governance.InvalidError
	switch {
	case errors.As(err, &inv):
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, err.Error())
	case errors.Is(err, governance.ErrNotFound):
		h.renderKeys(w, r, http.StatusNotFound, keysData{}, "Budget "+id+" does not exist.")
	case errors.Is(err, governance.ErrReadOnly):
		h.renderKeys(w, r, http.StatusConflict, keysData{}, "Budget "+id+" is defined in the config file (governance.budgets); change it there.")
	default:
		h.renderKeys(w, r, http.StatusInternalServerError, keysData{}, err.Error())
	}
}

// createBudget stores a budget from the form.
func (h *Handler) createBudget(w http.ResponseWriter, r *http.Request) {
	b, err := budgetForm(r)
	if err != nil {
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, err.Error())
		return
	}
	if _, err := h.Governor.CreateBudget(r.Context(), b); err != nil {
		h.budgetFailure(w, r, "", err)
		return
	}
	http.Redirect(w, r, "/ui/keys#budgets", http.StatusSeeOther)
}

// updateBudget changes a stored budget's limit and mode, keeping its
// scope, period and webhook.
func (h *Handler) updateBudget(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cur, err := h.Governor.Budget(r.Context(), id)
	if err != nil {
		h.budgetFailure(w, r, id, err)
		return
	}
	r.PostForm.Set("scope", cur.Scope)
	r.PostForm.Set("period", cur.Period)
	r.PostForm.Set("webhook", cur.Webhook)
	if r.PostFormValue("mode") == "" {
		r.PostForm.Set("mode", cur.Mode)
	}
	b, err := budgetForm(r)
	if err != nil {
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, err.Error())
		return
	}
	before, _, err := h.Governor.UpdateBudget(r.Context(), id, b)
	if before.ID != "" {
		audit.SetBefore(r, before)
	}
	if err != nil {
		h.budgetFailure(w, r, id, err)
		return
	}
	http.Redirect(w, r, "/ui/keys#budgets", http.StatusSeeOther)
}

// deleteBudget removes a stored budget.
func (h *Handler) deleteBudget(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	before, err := h.Governor.DeleteBudget(r.Context(), id)
	if before.ID != "" {
		audit.SetBefore(r, before)
	}
	if err != nil {
		h.budgetFailure(w, r, id, err)
		return
	}
	http.Redirect(w, r, "/ui/keys#budgets", http.StatusSeeOther)
}
