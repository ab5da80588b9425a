// Package console is Junction's web console at /ui: server-rendered pages
// over the same queries the admin API and the CLI use (the usage report,
// keys, endpoints), with charts drawn as inline SVG. Its assets are
// embedded in the binary; there is no build step and no script.
//
// It is not a second API: every number it shows comes from a function the
// admin API also serves, and every change it makes goes through the same
// stores, audited like an admin API call.
package console

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/secret"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/audit"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/wire/llm"
)

//go:embed assets
var assets embed.FS

// Handler serves the console.
type Handler struct {
	Keys *keys.Store
	DB   *sql.DB
	// Box seals sessions; it is the data directory's master key, opened
	// on first use.
	Box func() (*secret.Box, error)
	// Budgets lists the budgets with their current spending
	// (GET /api/v1/budgets); nil leaves them out.
	Budgets func(context.Context) ([]governance.BudgetView, error)
	// Governor, when set, lets an admin create, edit and delete stored
	// budgets from the Keys page.
	Governor *governance.Governor
	// Endpoints describes the self-hosted endpoints; nil when hosting is
	// disabled.
	Endpoints func() []*hosting.Endpoint
	// Invoke, when set with Endpoints, lets an admin invoke an endpoint
	// from its page.
	Invoke Invoker
	// Advise answers a cost scenario as POST /api/v1/advisor does (the
	// admin API's own handler, called in-process); nil hides the Advisor.
	Advise func(r *http.Request, scenario []byte) (*admin.Advice, *llm.Error)
	// Guardrails lists the guardrails as GET /api/v1/guardrails does;
	// nil hides them.
	Guardrails func(r *http.Request) ([]*guardrail.Record, error)
	// GuardrailEditor, when set, lets an admin create, edit and delete
	// stored guardrails from the Guardrails page.
	GuardrailEditor GuardrailEditor
	// Audit lists the audit log as GET /api/v1/audit does for r's query
	// (since, limit); nil hides it.
	Audit func(r *http.Request) ([]audit.Entry, *llm.Error)
	// Jobs lists the batch jobs; nil hides the Jobs page. CancelJob
	// cancels one from it (admins only).
	Jobs      JobLister
	CancelJob JobCanceller
	// Queues lists the async-inference queues, one per endpoint, as GET
	// /api/v1/endpoints/{name}/async does; nil leaves them off the Jobs
	// page (admins only, as the Endpoints page is).
	Queues func(ctx context.Context) ([]async.Stats, error)
	// Activities lists an endpoint's scaling activities, newest first, as
	// GET /api/v1/endpoints/{name}/scaling/activities does: the Endpoints
	// page draws the instances asked for over time from them; nil draws
	// the current desired counts alone.
	Activities func(ctx context.Context, endpoint string) ([]autoscale.Activity, error)
	// Now returns the current time; tests may fix it.
	Now func() time.Time
	Log *slog.Logger

	pages map[string]*template.Template
}

// Register adds the console's routes under /ui. wrapChange wraps the
// routes that change something (the server records them in the audit
// log); it runs after the session is checked, so it sees the key.
func (h *Handler) Register(mux *http.ServeMux, wrapChange func(http.Handler) http.Handler) {
	h.pages = map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "spend", "routing", "keys", "endpoints", "advisor", "guardrails", "audit", "jobs"} {
		h.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html"))
	}
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusSeeOther) })
	mux.HandleFunc("GET /ui/login", h.loginPage)
	mux.HandleFunc("POST /ui/login", h.login)
	mux.Handle("POST /ui/logout", h.signedIn(false, http.HandlerFunc(h.logout)))
	mux.Handle("GET /ui/{$}", h.signedIn(false, http.HandlerFunc(h.overview)))
	mux.Handle("GET /ui/spend", h.signedIn(false, http.HandlerFunc(h.spend)))
	mux.Handle("GET /ui/spend.csv", h.signedIn(false, http.HandlerFunc(h.spendCSV)))
	mux.Handle("GET /ui/routing", h.signedIn(false, http.HandlerFunc(h.routing)))
	mux.Handle("GET /ui/keys", h.signedIn(false, http.HandlerFunc(h.keysPage)))
	mux.Handle("POST /ui/keys", h.signedIn(true, wrapChange(http.HandlerFunc(h.createKey))))
	mux.Handle("POST /ui/keys/{id}/revoke", h.signedIn(true, wrapChange(http.HandlerFunc(h.revokeKey))))
	mux.Handle("POST /ui/keys/{id}/limits", h.signedIn(true, wrapChange(http.HandlerFunc(h.setLimits))))
	if h.Governor != nil {
		mux.Handle("POST /ui/budgets", h.signedIn(true, wrapChange(http.HandlerFunc(h.createBudget))))
		mux.Handle("POST /ui/budgets/{id}", h.signedIn(true, wrapChange(http.HandlerFunc(h.updateBudget))))
		mux.Handle("POST /ui/budgets/{id}/delete", h.signedIn(true, wrapChange(http.HandlerFunc(h.deleteBudget))))
	}
	mux.Handle("GET /ui/endpoints", h.signedIn(true, http.HandlerFunc(h.endpoints)))
	if h.Invoke != nil && h.Endpoints != nil {
		mux.Handle("POST /ui/endpoints/{name}/invoke", h.signedIn(true, http.HandlerFunc(h.invokeEndpoint)))
	}
	if h.Jobs != nil || h.Queues != nil {
		mux.Handle("GET /ui/jobs", h.signedIn(false, http.HandlerFunc(h.jobsPage)))
		if h.Jobs != nil && h.CancelJob != nil {
			mux.Handle("POST /ui/jobs/{id}/cancel", h.signedIn(true, wrapChange(http.HandlerFunc(h.cancelJob))))
		}
	}
	mux.Handle("GET /ui/advisor", h.signedIn(true, http.HandlerFunc(h.advisorPage)))
	mux.Handle("GET /ui/guardrails", h.signedIn(true, http.HandlerFunc(h.guardrails)))
	if h.GuardrailEditor != nil && h.Guardrails != nil {
		mux.Handle("POST /ui/guardrails", h.signedIn(true, wrapChange(http.HandlerFunc(h.createGuardrail))))
		mux.Handle("POST /ui/guardrails/{id}", h.signedIn(true, wrapChange(http.HandlerFunc(h.updateGuardrail))))
		mux.Handle("POST /ui/guardrails/{id}/delete", h.signedIn(true, wrapChange(http.HandlerFunc(h.deleteGuardrail))))
	}
	mux.Handle("GET /ui/audit", h.signedIn(true, http.HandlerFunc(h.auditPage)))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no console page at "+r.URL.Path+".")
	})
}

// viewer is who is looking: an admin key sees everything, a team key its
// team's usage only.
type viewer struct {
	Key  *keys.Key
	CSRF string
	// Jobs is set when the server runs batch jobs or async queues (the
	// Jobs page exists).
	Jobs bool
}

// Team is the team the viewer is confined to; empty for an admin.
func (v *viewer) Team() string {
	if v.Key.Admin {
		return ""
	}
	return v.Key.Team
}

type viewerKey struct{}

// signedIn admits requests with a live session (an admin's, when
// adminOnly) and, for POSTs, only from this origin with the session's
// CSRF token. Others go to the login page.
func (h *Handler) signedIn(adminOnly bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, k, err := h.readSession(r)
		if err != nil {
			if err != errNoSession {
				h.fail(w, r, http.StatusInternalServerError, "Sessions are unavailable: "+err.Error())
				return
			}
			if r.Method != http.MethodGet {
				h.fail(w, r, http.StatusUnauthorized, "Your session has ended; sign in again.")
				return
			}
			http.Redirect(w, r, "/ui/login?next="+urlEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !k.Admin && k.Team == "" {
			clearSession(w, r)
			h.fail(w, r, http.StatusForbidden, "This key belongs to no team; sign in with an admin key or a team's key.")
			return
		}
		if r.Method != http.MethodGet && (!sameOrigin(r) || !validCSRF(r, s)) {
			h.fail(w, r, http.StatusForbidden, "This form did not come from this console (its CSRF token is missing or stale); reload the page and try again.")
			return
		}
		if adminOnly && !k.Admin {
			h.fail(w, r, http.StatusForbidden, "This page needs an admin key; team "+k.Team+"'s key sees its own usage only.")
			return
		}
		// The audit log and the access log name the key, as they do for
		// the admin API.
		api.InfoFrom(r.Context()).Key = k
		next.ServeHTTP(w, r.WithContext(withViewer(r.Context(), &viewer{Key: k, CSRF: s.CSRF, Jobs: h.Jobs != nil || h.Queues != nil})))
	})
}

// page is what every page's template gets.
type page struct {
	Title  string
	Nav    string
	Viewer *viewer
	Error  string
	Data   any
}

// render writes a page with status 200.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	h.renderStatus(w, r, http.StatusOK, name, p)
}

func (h *Handler) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Viewer == nil {
		p.Viewer = viewerFrom(r.Context())
	}
	if p.Nav == "" {
		p.Nav = name
	}
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, p); err != nil {
		h.log().Error("console: rendering a page failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	setHeaders(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// setHeaders forbids framing and any script or outside resource: the
// pages need none.
func setHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" on the console's own forms, which sameOrigin refuses.
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Cache-Control", "no-store")
}

// fail shows an error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.renderStatus(w, r, status, "login", page{Title: http.StatusText(status), Nav: "error", Error: msg})
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// usd writes a dollar amount to a millionth of a dollar, as the CLI does.
func usd(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 6, 64) }

var funcs = template.FuncMap{
	"usd":  usd,
	"usd2": usd2,
	"vol":  func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"pct": func(part, whole int64) string {
		if whole == 0 {
			return "0.0%"
		}
		return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + "%"
	},
	"pctf": func(part, whole float64) string {
		if whole <= 0 {
			return ""
		}
		return strconv.FormatFloat(100*part/whole, 'f', 1, 64) + "%"
	},
	"ms":    func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " ms" },
	"f2":    func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"f4":    func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) },
	"share": func(v float64) string { return strconv.FormatFloat(100*v, 'f', 0, 64) + "%" },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"float": func(n int64) float64 { return float64(n) },
	// markerAt places a line chart's marker, centred on (x, y).
	"markerAt": func(shape, color string, x, y float64) any {
		return struct {
			Shape, Color     string
			X, Y, X3, Y3, Y4 float64
		}{shape, color, x, y, x - 3.5, y - 3.5, y - 4}
	},
	"card": func(id string, s pathSpend) any { return struct{ ID, S any }{id, s} },
	// bar sizes a horizontal bar of part against whole, 120 pixels long.
	"bar": func(part, whole float64) any {
		w := 0.0
		if whole > 0 {
			w = 120 * min(1, part/whole)
		}
		return struct{ W float64 }{w}
	},
	"top": func(id, title, head string, rows []ledger.Row, max float64) any {
		return struct {
			ID, Title, Head string
			Rows            []ledger.Row
			Max             float64
		}{id, title, head, rows, max}
	},
	"rtable": func(id, caption, head string, u *admin.UsageResponse) any {
		return struct {
			ID, Caption, Head string
			U                 *admin.UsageResponse
		}{id, caption, head, u}
	},
}
