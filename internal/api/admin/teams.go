package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/governance/audit"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// registerOrg adds the routes of teams, their projects, and keys' own
// rate limits.
func (h *Handler) registerOrg(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/teams", auth(http.HandlerFunc(h.createTeam)))
	mux.Handle("GET /api/v1/teams", auth(http.HandlerFunc(h.listTeams)))
	mux.Handle("DELETE /api/v1/teams/{team}", auth(http.HandlerFunc(h.deleteTeam)))
	mux.Handle("POST /api/v1/teams/{team}/projects", auth(http.HandlerFunc(h.createProject)))
	mux.Handle("GET /api/v1/teams/{team}/projects", auth(http.HandlerFunc(h.listProjects)))
	mux.Handle("DELETE /api/v1/teams/{team}/projects/{project}", auth(http.HandlerFunc(h.deleteProject)))
	mux.Handle("PUT /api/v1/keys/{id}/limits", auth(http.HandlerFunc(h.setKeyLimits)))
}

// CreateTeamRequest is the body of POST /api/v1/teams and of
// POST /api/v1/teams/{team}/projects.
type CreateTeamRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// KeyLimitsRequest is the body of PUT /api/v1/keys/{id}/limits: the key's
// own requests and tokens per minute (0 leaves the configured limits).
type KeyLimitsRequest struct {
	RPM int64 `json:"rpm"`
	TPM int64 `json:"tpm"`
}

// orgError maps the errors of teams, projects and keys to answers.
func orgError(err error) *llm.Error {
	switch {
	case errors.Is(err, keys.ErrInvalid):
		return llm.BadRequest("", "%v", err)
	case errors.Is(err, keys.ErrMissing):
		return llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "%v", err)
	case errors.Is(err, keys.ErrNotFound):
		return llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "key does not exist or is revoked")
	case errors.Is(err, keys.ErrExists), errors.Is(err, keys.ErrInUse):
		return llm.Errorf(http.StatusConflict, llm.ErrInvalidRequest, "%v", err)
	}
	return llm.AsError(err)
}

// decode reads a JSON body of at most 64 KiB into v.
func decode(w http.ResponseWriter, r *http.Request, v any) *llm.Error {
	body, e := api.ReadBody(w, r, 64<<10)
	if e != nil {
		return e
	}
	if err := json.Unmarshal(body, v); err != nil {
		return llm.BadRequest("", "request body is not valid JSON: %s", llm.JSONProblem(err))
	}
	return nil
}

func (h *Handler) createTeam(w http.ResponseWriter, r *http.Request) {
	var req CreateTeamRequest
	if e := decode(w, r, &req); e != nil {
		WriteError(w, r, e)
		return
	}
	t, err := h.Keys.CreateTeam(r.Context(), strings.TrimSpace(req.Name), req.Description)
	if err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (h *Handler) listTeams(w http.ResponseWriter, r *http.Request) {
	list, err := h.Keys.Teams(r.Context())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"teams": list})
}

func (h *Handler) deleteTeam(w http.ResponseWriter, r *http.Request) {
	audit.SetBefore(r, map[string]string{"team": r.PathValue("team")})
	if err := h.Keys.DeleteTeam(r.Context(), r.PathValue("team")); err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) createProject(w http.ResponseWriter, r *http.Request) {
	var req CreateTeamRequest
	if e := decode(w, r, &req); e != nil {
		WriteError(w, r, e)
		return
	}
	p, err := h.Keys.CreateProject(r.Context(), r.PathValue("team"), strings.TrimSpace(req.Name), req.Description)
	if err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (h *Handler) listProjects(w http.ResponseWriter, r *http.Request) {
	list, err := h.Keys.Projects(r.Context(), r.PathValue("team"))
	if err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": list})
}

func (h *Handler) deleteProject(w http.ResponseWriter, r *http.Request) {
	team, project := r.PathValue("team"), r.PathValue("project")
	audit.SetBefore(r, map[string]string{"team": team, "project": project})
	if err := h.Keys.DeleteProject(r.Context(), team, project); err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) setKeyLimits(w http.ResponseWriter, r *http.Request) {
	var req KeyLimitsRequest
	if e := decode(w, r, &req); e != nil {
		WriteError(w, r, e)
		return
	}
	before, after, err := h.Keys.SetLimits(r.Context(), r.PathValue("id"), req.RPM, req.TPM)
	if err != nil {
		WriteError(w, r, orgError(err))
		return
	}
	audit.SetBefore(r, before)
	writeJSON(w, http.StatusOK, after)
}
