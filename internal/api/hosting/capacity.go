package hosting

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/hosting/capacity"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// RegisterCapacity adds the routes of endpoints' capacity measurements
// behind auth (admin keys):
//
//	POST /api/v1/endpoints/{name}/capacity  store a measurement (a
//	                                        capacity.Measurement; junction
//	                                        bench endpoint makes it)
//	GET  /api/v1/endpoints/{name}/capacity  ?limit=N (default 20): the
//	                                        endpoint's measurements, latest
//	                                        first
//
// The server fills what it knows better than the client: the endpoint's
// name, its config when none is given, the instance type's hourly price
// from the hosting catalog, and rps_per_instance (rps / instance_count).
func (h *Handler) RegisterCapacity(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/endpoints/{name}/capacity", auth(http.HandlerFunc(h.addCapacity)))
	mux.Handle("GET /api/v1/endpoints/{name}/capacity", auth(http.HandlerFunc(h.listCapacity)))
}

func (h *Handler) capacityStore() *capacity.Store {
	return &capacity.Store{DB: h.Controller.Store().DB}
}

func (h *Handler) addCapacity(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var m capacity.Measurement
	if !decode(w, r, &m) {
		return
	}
	ep, err := h.Controller.Endpoint(name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	switch m.Endpoint {
	case "":
		m.Endpoint = name
	case name:
	default:
		admin.WriteError(w, r, llm.BadRequest("endpoint", "endpoint: %q is not %q, the endpoint in the path", m.Endpoint, name))
		return
	}
	if m.Config == "" {
		m.Config = ep.Config
	}
	m.USDPerHour = 0
	if m.InstanceType != "" {
		it, ok := h.Controller.Types()[m.InstanceType]
		if !ok {
			admin.WriteError(w, r, llm.BadRequest("instance_type", "instance_type: %q is not in the instance catalog (GET /api/v1/instance-types lists them)", m.InstanceType))
			return
		}
		m.USDPerHour = it.USDPerHour
	}
	if err := h.capacityStore().Add(r.Context(), &m); err != nil {
		var ps capacity.Problems
		if errors.As(err, &ps) {
			admin.WriteError(w, r, llm.BadRequest(ps[0].Field, "%s", ps.Error()))
			return
		}
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (h *Handler) listCapacity(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	limit := 20
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			admin.WriteError(w, r, llm.BadRequest("limit", "limit: must be a number from 1 to 1000"))
			return
		}
		limit = n
	}
	list, err := h.capacityStore().List(r.Context(), name, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(list) == 0 {
		// A deleted endpoint keeps its measurements; a name never
		// measured and not an endpoint is most likely a typo.
		if _, err := h.Controller.Endpoint(name); err != nil {
			writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"measurements": list})
}
