package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/governance"
)

type keysData struct {
	Keys []*keys.Key
	// Created is the key just made, with its secret shown this once.
	Created       *keys.Key
	CreatedSecret string
	Teams         []*keys.Team
	Budgets       []budgetRow
	// EditBudgets shows the forms that change budgets (an admin, with
	// governance on).
	EditBudgets bool
}

// budgetRow is a budget with its spending as a number, for its bar.
type budgetRow struct {
	governance.BudgetView
	Spent float64
}

// keysPage lists the live keys and the budgets with their spending: all
// of them for an admin, the team's own for a team key.
func (h *Handler) keysPage(w http.ResponseWriter, r *http.Request) {
	h.renderKeys(w, r, http.StatusOK, keysData{}, "")
}

func (h *Handler) renderKeys(w http.ResponseWriter, r *http.Request, status int, d keysData, msg string) {
	all, err := h.Keys.List(r.Context())
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	team := viewerFrom(r.Context()).Team()
	for _, k := range all {
		if k.RevokedAt == nil && (team == "" || k.Team == team) {
			d.Keys = append(d.Keys, k)
		}
	}
	if team == "" {
		if d.Teams, err = h.Keys.Teams(r.Context()); err != nil {
			h.fail(w, r, http.StatusInternalServerError, err.Error())
			return
		}
	}
	d.EditBudgets = team == "" && h.Governor != nil
	if h.Budgets != nil {
		list, err := h.Budgets(r.Context())
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		for _, b := range list {
			if team != "" && b.Scope != "team:"+team {
				continue
			}
			row := budgetRow{BudgetView: b}
			if b.Status != nil {
				row.Spent, _ = strconv.ParseFloat(b.Status.SpentUSD, 64)
			}
			d.Budgets = append(d.Budgets, row)
		}
	}
	h.renderStatus(w, r, status, "keys", page{Title: "Keys", Error: msg, Data: d})
}

// createKey makes a key from the form, as POST /api/v1/keys does.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	spec := keys.Spec{Name: strings.TrimSpace(r.PostFormValue("name")), Team: r.PostFormValue("team"),
		Admin: r.PostFormValue("admin") == "on"}
	if spec.Name == "" {
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, "Name the key.")
		return
	}
	tags, err := keys.ParseTags(r.PostFormValue("tags"))
	if err == nil {
		err = keys.ValidateTags(tags)
	}
	if err != nil {
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, "Tags: "+err.Error())
		return
	}
	spec.Tags = tags
	k, secret, err := h.Keys.CreateKey(r.Context(), spec)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, keys.ErrMissing) || errors.Is(err, keys.ErrInvalid) || errors.Is(err, keys.ErrExists) {
			status = http.StatusBadRequest
		}
		h.renderKeys(w, r, status, keysData{}, err.Error())
		return
	}
	h.renderKeys(w, r, http.StatusCreated, keysData{Created: k, CreatedSecret: secret}, "")
}

// revokeKey revokes a key, as DELETE /api/v1/keys/{id} does.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == viewerFrom(r.Context()).Key.ID {
		h.renderKeys(w, r, http.StatusBadRequest, keysData{}, "A key cannot revoke itself; sign in with another admin key.")
		return
	}
	switch err := h.Keys.Revoke(r.Context(), id); {
	case errors.Is(err, keys.ErrNotFound):
		h.renderKeys(w, r, http.StatusNotFound, keysData{}, "Key "+id+" does not exist.")
	case err != nil:
		h.renderKeys(w, r, http.StatusInternalServerError, keysData{}, err.Error())
	default:
		http.Redirect(w, r, "/ui/keys", http.StatusSeeOther)
	}
}
