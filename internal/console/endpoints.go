package console

import (
	"net/http"

	"github.com/junctionhq/junction/internal/hosting"
)

// endpoints shows each self-hosted endpoint with its variants and their
// instances, from the controller's live state (GET /api/v1/endpoints).
func (h *Handler) endpoints(w http.ResponseWriter, r *http.Request) {
	var eps []*hosting.Endpoint
	if h.Endpoints != nil {
		eps = h.Endpoints()
	}
	h.render(w, r, "endpoints", page{Title: "Endpoints", Data: map[string]any{"Endpoints": eps, "Hosting": h.Endpoints != nil}})
}
