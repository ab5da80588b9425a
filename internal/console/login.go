package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/junctionhq/junction/internal/api"
)

func withViewer(ctx context.Context, v *viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

func viewerFrom(ctx context.Context) *viewer {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	return v
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// nextPage is where to go after signing in: a console page, never
// another site.
func nextPage(s string) string {
	if !strings.HasPrefix(s, "/ui/") || strings.HasPrefix(s, "//") || strings.Contains(s, "\\") {
		return "/ui/"
	}
	return s
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "login", page{Title: "Sign in", Data: nextPage(r.URL.Query().Get("next"))})
}

// login signs in with an API key: an admin key, or a key that belongs to
// a team.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := nextPage(r.PostFormValue("next"))
	again := func(status int, msg string) {
		h.renderStatus(w, r, status, "login", page{Title: "Sign in", Error: msg, Data: next})
	}
	if !sameOrigin(r) {
		again(http.StatusForbidden, "This sign-in form did not come from this console.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("key"))
	if token == "" {
		again(http.StatusBadRequest, "Enter a Junction API key (jk-...).")
		return
	}
	k, ok := h.Keys.Authenticate(token)
	if !ok {
		again(http.StatusUnauthorized, "That key is not valid or has been revoked.")
		return
	}
	if !k.Admin && k.Team == "" {
		again(http.StatusForbidden, "That key belongs to no team; sign in with an admin key or a team's key.")
		return
	}
	if err := h.newSession(w, r, k); err != nil {
		h.log().Error("console: cannot seal a session", "err", err)
		again(http.StatusInternalServerError, "Sessions are unavailable: "+err.Error())
		return
	}
	api.InfoFrom(r.Context()).Key = k
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	clearSession(w, r)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
