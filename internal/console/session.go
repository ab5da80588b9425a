package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/secret"
)

// A session is a signed-in key. It lives only in the browser's cookie,
// sealed (AES-GCM) under the data directory's master key, so any replica
// with the same master key can read it and a client can neither read nor
// forge it. It names the key, not its secret: revoking the key ends every
// session it has, since each request looks the key up again.
type session struct {
	KeyID   string `json:"k"`
	Expires int64  `json:"e"`
	// CSRF is a random token the session's forms carry back: a request
	// that changes something must know it, which another site cannot.
	CSRF string `json:"c"`
}

// cookieName is the session cookie; cookiePath scopes it to the console.
const (
	cookieName = "junction_console"
	cookiePath = "/ui"
	// sessionTTL is how long a sign-in lasts.
	sessionTTL = 12 * time.Hour
)

// sealContext binds sealed sessions to this use of the master key, so a
// ciphertext sealed for another purpose does not open as a session.
var sealContext = []byte("junction console session v1")

var errNoSession = errors.New("not signed in")

// newSession seals a fresh session for k and sets its cookie.
func (h *Handler) newSession(w http.ResponseWriter, r *http.Request, k *keys.Key) error {
	box, err := h.Box()
	if err != nil {
		return err
	}
	var tok [16]byte
	rand.Read(tok[:])
	s := session{KeyID: k.ID, Expires: h.now().Add(sessionTTL).Unix(), CSRF: hex.EncodeToString(tok[:])}
	b, _ := json.Marshal(s)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(box.Seal(b, sealContext)),
		Path: cookiePath, MaxAge: int(sessionTTL.Seconds()), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return nil
}

// clearSession removes the cookie.
func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: cookiePath, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// readSession returns the request's session and its live key.
func (h *Handler) readSession(r *http.Request) (*session, *keys.Key, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, nil, errNoSession
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, nil, errNoSession
	}
	box, err := h.Box()
	if err != nil {
		return nil, nil, err
	}
	b, err := box.Open(sealed, sealContext)
	if errors.Is(err, secret.ErrOpen) {
		return nil, nil, errNoSession
	} else if err != nil {
		return nil, nil, err
	}
	var s session
	if json.Unmarshal(b, &s) != nil || h.now().Unix() >= s.Expires {
		return nil, nil, errNoSession
	}
	k, ok := h.Keys.Live(s.KeyID)
	if !ok {
		return nil, nil, errNoSession
	}
	return &s, k, nil
}

// sameOrigin reports whether a state-changing request came from a page of
// this server: browsers send Origin on every POST, and Sec-Fetch-Site on
// every request. A request with neither (a non-browser client) passes
// this check and still needs the session's CSRF token.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// validCSRF reports whether the form carries the session's CSRF token.
func validCSRF(r *http.Request, s *session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}
