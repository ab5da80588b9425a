package hosting

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Scaling serves endpoint variants' scaling policies (package autoscale)
// behind auth (admin keys):
//
//	GET    /api/v1/endpoints/{name}/scaling                    every policy of the endpoint
//	GET    /api/v1/endpoints/{name}/variants/{variant}/scaling the variant's policy, or 404
//	PUT    /api/v1/endpoints/{name}/variants/{variant}/scaling store it (an autoscale.Policy)
//	DELETE /api/v1/endpoints/{name}/variants/{variant}/scaling remove it; the count stays as it is
//	GET    /api/v1/endpoints/{name}/scaling/activities         its scaling activities, newest first (?variant=, ?limit=)
type Scaling struct {
	Controller *hosting.Controller
	Policies   *autoscale.Store
}

// Register adds the routes to mux behind auth.
func (h *Scaling) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/endpoints/{name}/scaling", auth(http.HandlerFunc(h.list)))
	mux.Handle("GET /api/v1/endpoints/{name}/scaling/activities", auth(http.HandlerFunc(h.activities)))
	mux.Handle("GET /api/v1/endpoints/{name}/variants/{variant}/scaling", auth(http.HandlerFunc(h.get)))
	mux.Handle("PUT /api/v1/endpoints/{name}/variants/{variant}/scaling", auth(http.HandlerFunc(h.put)))
	mux.Handle("DELETE /api/v1/endpoints/{name}/variants/{variant}/scaling", auth(http.HandlerFunc(h.delete)))
}

// variant checks that the path names an endpoint and one of its
// production variants; it has answered when it returns false.
func (h *Scaling) variant(w http.ResponseWriter, r *http.Request) (*hosting.Variant, bool) {
	name, variant := r.PathValue("name"), r.PathValue("variant")
	ep, err := h.Controller.Endpoint(name)
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	config := ep.Config
	if ep.PendingConfig != "" {
		config = ep.PendingConfig
	}
	cfg, err := h.Controller.Store().Config(r.Context(), config)
	if err != nil {
		writeError(w, r, err)
		return nil, false
	}
	var names []string
	for i, v := range cfg.Variants {
		if v.Name == variant {
			return &cfg.Variants[i], true
		}
		names = append(names, v.Name)
	}
	admin.WriteError(w, r, &llm.Error{Status: http.StatusNotFound, Type: llm.ErrNotFound,
		Message: "endpoint " + name + " (config " + config + ") has no production variant " + variant + "; its variants are " + strings.Join(names, ", ")})
	return nil, false
}

func (h *Scaling) list(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.Controller.Endpoint(name); err != nil {
		writeError(w, r, err)
		return
	}
	list, err := h.Policies.List(r.Context(), name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": list})
}

func (h *Scaling) activities(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.Controller.Endpoint(name); err != nil {
		writeError(w, r, err)
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			admin.WriteError(w, r, llm.BadRequest("limit", "limit: %q must be a whole number from 1 to 1000", v))
			return
		}
		limit = n
	}
	list, err := h.Policies.Activities(r.Context(), name, r.URL.Query().Get("variant"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"activities": list})
}

func (h *Scaling) get(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.variant(w, r); !ok {
		return
	}
	p, err := h.Policies.Get(r.Context(), r.PathValue("name"), r.PathValue("variant"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if p == nil {
		admin.WriteError(w, r, &llm.Error{Status: http.StatusNotFound, Type: llm.ErrNotFound,
			Message: "variant " + r.PathValue("variant") + " of endpoint " + r.PathValue("name") + " has no scaling policy; PUT one"})
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *Scaling) put(w http.ResponseWriter, r *http.Request) {
	v, ok := h.variant(w, r)
	if !ok {
		return
	}
	var p autoscale.Policy
	if !decode(w, r, &p) {
		return
	}
	name, variant := r.PathValue("name"), r.PathValue("variant")
	for field, got := range map[string]string{"endpoint": p.Endpoint, "variant": p.Variant} {
		want := map[string]string{"endpoint": name, "variant": variant}[field]
		if got != "" && got != want {
			admin.WriteError(w, r, llm.BadRequest(field, "%s: %q is not %q, the %s in the path", field, got, want, field))
			return
		}
	}
	p.Endpoint, p.Variant = name, variant
	if err := p.Validate(); err != nil {
		admin.WriteError(w, r, llm.BadRequest("", "%v", err))
		return
	}
	if v.Serverless != nil {
		admin.WriteError(w, r, llm.BadRequest("", "variant %s is serverless: it scales with its calls (to zero when idle) and takes no scaling policy", variant))
		return
	}
	if err := h.Policies.Put(r.Context(), &p); err != nil {
		writeError(w, r, err)
		return
	}
	h.Controller.Event(name, "autoscale: policy for variant "+variant+" stored")
	writeJSON(w, http.StatusOK, p)
}

func (h *Scaling) delete(w http.ResponseWriter, r *http.Request) {
	name, variant := r.PathValue("name"), r.PathValue("variant")
	if _, err := h.Controller.Endpoint(name); err != nil {
		writeError(w, r, err)
		return
	}
	had, err := h.Policies.Delete(r.Context(), name, variant)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !had {
		admin.WriteError(w, r, &llm.Error{Status: http.StatusNotFound, Type: llm.ErrNotFound,
			Message: "variant " + variant + " of endpoint " + name + " has no scaling policy"})
		return
	}
	h.Controller.Event(name, "autoscale: policy for variant "+variant+" removed")
	w.WriteHeader(http.StatusNoContent)
}
