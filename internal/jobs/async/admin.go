package async

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Register adds the queue's admin routes to mux, behind adminAuth:
// GET /api/v1/endpoints/{name}/async (the queue's Stats) and
// GET /api/v1/endpoints/{name}/async/requests?state=&limit= (its
// requests, newest first).
func (q *Queue) Register(mux *http.ServeMux, adminAuth func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/endpoints/{name}/async", adminAuth(http.HandlerFunc(q.serveStats)))
	mux.Handle("GET /api/v1/endpoints/{name}/async/requests", adminAuth(http.HandlerFunc(q.serveList)))
}

func (q *Queue) serveStats(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	stats, err := q.Stats(r.Context(), name)
	if err != nil {
		http.Error(w, `{"error":{"message":"the queue could not be read"}}`, http.StatusInternalServerError)
		return
	}
	out := Stats{Endpoint: name}
	if len(stats) == 1 {
		out = stats[0]
	}
	writeJSON(w, out)
}

func (q *Queue) serveList(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	switch state {
	case "", StateQueued, StateRunning, StateSucceeded, StateFailed:
	default:
		badRequest(w, "state: "+strconv.Quote(state)+" must be queued, running, succeeded or failed")
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			badRequest(w, "limit: must be from 1 to 1000")
			return
		}
		limit = n
	}
	list, err := q.List(r.Context(), r.PathValue("name"), state, limit)
	if err != nil {
		http.Error(w, `{"error":{"message":"the queue could not be read"}}`, http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"requests": list})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg, "type": "invalid_request_error"}})
}
