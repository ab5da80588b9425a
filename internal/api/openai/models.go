package openai

import (
	"encoding/json"
	"net/http"

	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
)

// modelObjects lists what a client may name as a model: configured
// models (owned by their provider), routes and self-hosted endpoints.
func (h *Handler) modelObjects() []openaiwire.Model {
	rt := h.Gateway.Router
	out := []openaiwire.Model{}
	for _, t := range rt.Models() {
		out = append(out, openaiwire.Model{ID: t.Model, Object: "model", OwnedBy: t.Provider})
	}
	for _, name := range rt.Names() {
		if rt.IsRoute(name) {
			out = append(out, openaiwire.Model{ID: name, Object: "model", OwnedBy: "junction-route"})
		}
	}
	for _, name := range rt.Endpoints() {
		out = append(out, openaiwire.Model{ID: name, Object: "model", OwnedBy: "junction-endpoint"})
	}
	return out
}

// models answers GET /v1/models.
func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, openaiwire.ModelList{Object: "list", Data: h.modelObjects()})
}

// model answers GET /v1/models/{id}: one entry of the list, or 404 as
// OpenAI answers for a model that does not exist. The id may hold
// slashes (a route named team/chat).
func (h *Handler) model(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, m := range h.modelObjects() {
		if m.ID == id {
			writeJSON(w, m)
			return
		}
	}
	WriteError(w, r, &llm.Error{Status: http.StatusNotFound, Type: llm.ErrInvalidRequest, Code: "model_not_found",
		Message: "The model '" + id + "' does not exist: GET /v1/models lists the models, routes and endpoints Junction serves"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
