package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	guardrailapi "github.com/junctionhq/junction/internal/api/guardrail"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// GuardrailEditor changes stored guardrails as POST, PUT and DELETE
// /api/v1/guardrails do, with the same checks and answers; the guardrail
// API's Handler is one.
type GuardrailEditor interface {
	CreatePolicy(ctx context.Context, p guardrail.Policy) (*guardrail.Record, *llm.Error)
	UpdatePolicy(ctx context.Context, id string, p guardrail.Policy) (*guardrail.Record, *llm.Error)
	DeletePolicy(ctx context.Context, id string) *llm.Error
}

type guardrailsData struct {
	Rows []guardrailRow
	// Editable shows the forms that change stored guardrails.
	Editable bool
	// NewPolicy is the create form's text, kept when it was refused.
	NewPolicy string
}

// guardrailRow is a listed guardrail with its policy as the edit form
// shows it: indented JSON, as the API takes it.
type guardrailRow struct {
	*guardrail.Record
	JSON string
}

// guardrails lists the guardrails as GET /api/v1/guardrails does: the
// config's, then the stored ones, which an admin may change here.
func (h *Handler) guardrails(w http.ResponseWriter, r *http.Request) {
	h.renderGuardrails(w, r, http.StatusOK, guardrailsData{}, "", "")
}

// renderGuardrails shows the page with msg as its error; text, when set,
// is what the form of the guardrail named by edit (or the create form,
// when edit is empty) held, shown again to be fixed.
func (h *Handler) renderGuardrails(w http.ResponseWriter, r *http.Request, status int, d guardrailsData, msg, edit string) {
	if h.Guardrails == nil {
		h.renderStatus(w, r, http.StatusServiceUnavailable, "guardrails", page{Title: "Guardrails", Error: "Guardrails are not available on this server."})
		return
	}
	list, err := h.Guardrails(r)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	text := d.NewPolicy
	if edit != "" {
		d.NewPolicy = "" // the text is that guardrail's
	}
	d.Editable = h.GuardrailEditor != nil
	for _, g := range list {
		row := guardrailRow{Record: g}
		if edit != "" && g.ID == edit {
			row.JSON = text
		} else if b, err := json.MarshalIndent(g.Policy, "", "  "); err == nil {
			row.JSON = string(b)
		}
		d.Rows = append(d.Rows, row)
	}
	h.renderStatus(w, r, status, "guardrails", page{Title: "Guardrails", Error: msg, Data: d})
}

// readPolicy reads the form's policy as the API reads a body.
func readPolicy(r *http.Request) (string, guardrail.Policy, *llm.Error) {
	text := strings.TrimSpace(r.PostFormValue("policy"))
	var p guardrail.Policy
	if text == "" {
		return text, p, llm.BadRequest("policy", "Write the policy, as JSON.")
	}
	return text, p, guardrailapi.DecodePolicy([]byte(text), &p)
}

// createGuardrail stores a new guardrail's draft, as POST
// /api/v1/guardrails does.
func (h *Handler) createGuardrail(w http.ResponseWriter, r *http.Request) {
	text, p, e := readPolicy(r)
	if e == nil {
		_, e = h.GuardrailEditor.CreatePolicy(r.Context(), p)
	}
	if e != nil {
		h.renderGuardrails(w, r, e.Status, guardrailsData{NewPolicy: text}, e.Message, "")
		return
	}
	http.Redirect(w, r, "/ui/guardrails", http.StatusSeeOther)
}

// updateGuardrail replaces a guardrail's draft, as PUT
// /api/v1/guardrails/{id} does.
func (h *Handler) updateGuardrail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	text, p, e := readPolicy(r)
	if e == nil {
		_, e = h.GuardrailEditor.UpdatePolicy(r.Context(), id, p)
	}
	if e != nil {
		h.renderGuardrails(w, r, e.Status, guardrailsData{NewPolicy: text}, e.Message, id)
		return
	}
	http.Redirect(w, r, "/ui/guardrails", http.StatusSeeOther)
}

// deleteGuardrail removes a stored guardrail with its versions, as
// DELETE /api/v1/guardrails/{id} does.
func (h *Handler) deleteGuardrail(w http.ResponseWriter, r *http.Request) {
	if e := h.GuardrailEditor.DeletePolicy(r.Context(), r.PathValue("id")); e != nil {
		h.renderGuardrails(w, r, e.Status, guardrailsData{}, e.Message, "")
		return
	}
	http.Redirect(w, r, "/ui/guardrails", http.StatusSeeOther)
}
