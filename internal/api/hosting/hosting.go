// Package hosting is the REST API of self-hosted endpoints under
// /api/v1/: models, endpoint configs, endpoints (with their events and
// logs) and the instance catalog. The junction CLI is its client. The
// invocation path is elsewhere (api/sagemaker and the gateway).
package hosting

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Handler serves the hosting resources.
type Handler struct {
	Controller *hosting.Controller
}

// Register adds the routes to mux behind auth (admin keys).
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	handle := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, auth(f)) }
	handle("POST /api/v1/models", h.createModel)
	handle("GET /api/v1/models", h.listModels)
	handle("GET /api/v1/models/{name}", h.getModel)
	handle("PUT /api/v1/models/{name}", h.updateModel)
	handle("DELETE /api/v1/models/{name}", h.deleteModel)
	handle("POST /api/v1/endpoint-configs", h.createConfig)
	handle("GET /api/v1/endpoint-configs", h.listConfigs)
	handle("GET /api/v1/endpoint-configs/{name}", h.getConfig)
	handle("PUT /api/v1/endpoint-configs/{name}", h.updateConfig)
	handle("DELETE /api/v1/endpoint-configs/{name}", h.deleteConfig)
	handle("POST /api/v1/endpoints", h.createEndpoint)
	handle("GET /api/v1/endpoints", h.listEndpoints)
	handle("GET /api/v1/endpoints/{name}", h.getEndpoint)
	handle("PUT /api/v1/endpoints/{name}", h.updateEndpoint)
	handle("DELETE /api/v1/endpoints/{name}", h.deleteEndpoint)
	handle("PUT /api/v1/endpoints/{name}/variants", h.updateCapacities)
	handle("GET /api/v1/endpoints/{name}/events", h.events)
	handle("GET /api/v1/endpoints/{name}/logs", h.logs)
	handle("GET /api/v1/instance-types", h.instanceTypes)
}

// writeError answers an error in the admin API's shape.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *hosting.Error
	if errors.As(err, &he) {
		admin.WriteError(w, r, he.LLM())
		return
	}
	admin.WriteError(w, r, llm.AsError(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decode reads a JSON body strictly, so a misspelt field is an error.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		admin.WriteError(w, r, llm.BadRequest("", "request body: %v", err))
		return false
	}
	return true
}

func (h *Handler) createModel(w http.ResponseWriter, r *http.Request) {
	var m hosting.Model
	if !decode(w, r, &m) {
		return
	}
	if err := h.Controller.CreateModel(r.Context(), &m); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) {
	list, err := h.Controller.Store().Models(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
}

func (h *Handler) getModel(w http.ResponseWriter, r *http.Request) {
	m, err := h.Controller.Store().Model(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *Handler) updateModel(w http.ResponseWriter, r *http.Request) {
	var m hosting.Model
	if !decode(w, r, &m) {
		return
	}
	if m.Name != "" && m.Name != r.PathValue("name") {
		admin.WriteError(w, r, llm.BadRequest("name", "name: %q differs from the path's %q; a model cannot be renamed", m.Name, r.PathValue("name")))
		return
	}
	m.Name = r.PathValue("name")
	if err := h.Controller.UpdateModel(r.Context(), &m); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *Handler) deleteModel(w http.ResponseWriter, r *http.Request) {
	if err := h.Controller.DeleteModel(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) createConfig(w http.ResponseWriter, r *http.Request) {
	var c hosting.EndpointConfig
	if !decode(w, r, &c) {
		return
	}
	if err := h.Controller.CreateConfig(r.Context(), &c); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (h *Handler) listConfigs(w http.ResponseWriter, r *http.Request) {
	list, err := h.Controller.Store().Configs(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint_configs": list})
}

func (h *Handler) getConfig(w http.ResponseWriter, r *http.Request) {
	c, err := h.Controller.Store().Config(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *Handler) updateConfig(w http.ResponseWriter, r *http.Request) {
	var c hosting.EndpointConfig
	if !decode(w, r, &c) {
		return
	}
	if c.Name != "" && c.Name != r.PathValue("name") {
		admin.WriteError(w, r, llm.BadRequest("name", "name: %q differs from the path's %q; a config cannot be renamed", c.Name, r.PathValue("name")))
		return
	}
	c.Name = r.PathValue("name")
	if err := h.Controller.UpdateConfig(r.Context(), &c); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *Handler) deleteConfig(w http.ResponseWriter, r *http.Request) {
	if err := h.Controller.DeleteConfig(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// CreateEndpointRequest is the body of POST /api/v1/endpoints.
type CreateEndpointRequest struct {
	Name   string `json:"name"`
	Config string `json:"config"`
}

// UpdateEndpointRequest is the body of PUT /api/v1/endpoints/{name}.
type UpdateEndpointRequest struct {
	Config     string             `json:"config"`
	Deployment hosting.Deployment `json:"deployment"`
}

func (h *Handler) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req CreateEndpointRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Config == "" {
		admin.WriteError(w, r, llm.BadRequest("config", "config: required (the endpoint config to run)"))
		return
	}
	ep, err := h.Controller.CreateEndpoint(r.Context(), req.Name, req.Config)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ep)
}

func (h *Handler) listEndpoints(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": h.Controller.Endpoints()})
}

func (h *Handler) getEndpoint(w http.ResponseWriter, r *http.Request) {
	ep, err := h.Controller.Endpoint(r.PathValue("name"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (h *Handler) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var req UpdateEndpointRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Config == "" {
		admin.WriteError(w, r, llm.BadRequest("config", "config: required (the endpoint config to move to)"))
		return
	}
	ep, err := h.Controller.UpdateEndpoint(r.Context(), r.PathValue("name"), req.Config, req.Deployment)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, ep)
}

// UpdateCapacitiesRequest is the body of PUT
// /api/v1/endpoints/{name}/variants.
type UpdateCapacitiesRequest struct {
	Variants []hosting.VariantCapacity `json:"variants"`
}

func (h *Handler) updateCapacities(w http.ResponseWriter, r *http.Request) {
	var req UpdateCapacitiesRequest
	if !decode(w, r, &req) {
		return
	}
	ep, err := h.Controller.UpdateCapacities(r.Context(), r.PathValue("name"), req.Variants)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (h *Handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := h.Controller.DeleteEndpoint(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			admin.WriteError(w, r, llm.BadRequest("limit", "limit: must be a number from 1 to 10000"))
			return
		}
		limit = n
	}
	list, err := h.Controller.Store().Events(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": list})
}

// logs answers the tail of each instance's log as text, each under a
// header line naming the instance.
func (h *Handler) logs(w http.ResponseWriter, r *http.Request) {
	tail := int64(64 << 10)
	if s := r.URL.Query().Get("bytes"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > 16<<20 {
			admin.WriteError(w, r, llm.BadRequest("bytes", "bytes: must be a number from 1 to 16777216"))
			return
		}
		tail = n
	}
	logs, errs, err := h.Controller.Logs(r.PathValue("name"), tail)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	want := r.URL.Query().Get("instance")
	ids := make([]string, 0, len(logs)+len(errs))
	for _, m := range []map[string]bool{keys(logs), keys(errs)} {
		for id := range m {
			if want == "" || strings.Contains(id, want) {
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, id := range ids {
		fmt.Fprintf(w, "==> %s <==\n", id)
		if l, ok := logs[id]; ok {
			io.Copy(w, l)
		} else {
			fmt.Fprintf(w, "(no log: %v)\n", errs[id])
		}
	}
}

// keys is a map's key set.
func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func (h *Handler) instanceTypes(w http.ResponseWriter, r *http.Request) {
	types := h.Controller.Types()
	out := make([]hosting.InstanceType, 0, len(types))
	for _, t := range types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	writeJSON(w, http.StatusOK, map[string]any{"instance_types": out})
}
