package console

import (
	"net/http"

	"github.com/junctionhq/junction/internal/governance/audit"
)

// auditPage shows the latest audit entries as GET /api/v1/audit gives
// them, for the same since and limit.
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	d := auditData{Since: r.URL.Query().Get("since"), Limit: r.URL.Query().Get("limit")}
	if h.Audit == nil {
		h.renderStatus(w, r, http.StatusServiceUnavailable, "audit", page{Title: "Audit log", Error: "The audit log is not available on this server.", Data: d})
		return
	}
	list, e := h.Audit(r)
	if e != nil {
		h.renderStatus(w, r, e.Status, "audit", page{Title: "Audit log", Error: e.Error(), Data: d})
		return
	}
	d.Entries = list
	h.render(w, r, "audit", page{Title: "Audit log", Data: d})
}

type auditData struct {
	Since, Limit string
	Entries      []audit.Entry
}
