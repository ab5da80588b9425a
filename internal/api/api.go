// Package api holds what every inbound surface shares: the per-request
// information the server attaches to a request (id, start time, key,
// tags), key authentication, and body reading with a size limit. Each
// surface's wire format lives in its own subpackage.
package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// TagsHeader carries per-request tags: "team=search,app=faq".
const TagsHeader = "X-Junction-Tags"

// CacheHeader chooses how the response cache may answer a request:
// "exact" turns its semantic mode off for the request; "semantic" (the
// default) leaves it as configured.
const CacheHeader = "X-Junction-Cache"

// Info is what the server knows about a request before a surface sees it.
type Info struct {
	RequestID string
	Start     time.Time
	// Key is the authenticated key; nil before authentication.
	Key *keys.Key
	// Tags are the key's default tags overlaid with the request's.
	Tags map[string]string
	// Meta is the request's routing metadata (headers over key tags).
	Meta router.Metadata
	// Guardrail and GuardrailMode are what the request's headers
	// (X-Junction-Guardrail, X-Junction-Guardrail-Mode) or the key's tags
	// of the same names ask for.
	Guardrail, GuardrailMode string
	// KeyGuard and KeyGuardMode are the key's guardrail when the key
	// enforces it (tag guardrail_enforced=true): no request may replace it.
	KeyGuard, KeyGuardMode string
	// CacheControl is the request's Cache-Control header, and CacheMode
	// its X-Junction-Cache header, for the response cache.
	CacheControl, CacheMode string
	// Status is the status written, for the access log.
	Status int

	// Bodies is the server's in-flight body budget (nil: none), and
	// held what this request's body holds of it until ReleaseBody.
	Bodies *BodyBudget
	held   int64
}

// Call starts a gateway call for this request on the given surface.
func (i *Info) Call(surface string) *gateway.Call {
	return &gateway.Call{Surface: surface, RequestID: i.RequestID, Key: i.Key, Tags: i.Tags, Meta: i.Meta,
		Start: i.Start, GuardName: i.Guardrail, GuardMode: i.GuardrailMode, KeyGuard: i.KeyGuard, KeyGuardMode: i.KeyGuardMode,
		CacheControl: i.CacheControl, CacheMode: i.CacheMode}
}

type infoKey struct{}

// WithInfo attaches info to ctx.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the request's Info; a blank one if none is attached.
func InfoFrom(ctx context.Context) *Info {
	if i, ok := ctx.Value(infoKey{}).(*Info); ok {
		return i
	}
	return &Info{Start: time.Now()}
}

// ErrorWriter writes an error in a surface's own shape.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, e *llm.Error)

// Token returns the API key a request carries: a bearer token, or the
// x-api-key header that Anthropic clients send.
func Token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	return r.Header.Get("X-Api-Key")
}

// Authenticate admits requests with a live key (an admin key when
// adminOnly), records the key and tags in the request's Info, and answers
// others with 401 or 403 in the surface's shape. A request without a valid
// key is answered without reading its body (see RefuseUnread).
func Authenticate(ks *keys.Store, adminOnly bool, onErr ErrorWriter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := Token(r)
		if token == "" {
			RefuseUnread(w, r)
			onErr(w, r, llm.Errorf(http.StatusUnauthorized, llm.ErrAuthentication,
				"missing API key: send it as 'Authorization: Bearer <key>'"))
			return
		}
		k, ok := ks.Authenticate(token)
		if !ok {
			RefuseUnread(w, r)
			onErr(w, r, llm.Errorf(http.StatusUnauthorized, llm.ErrAuthentication, "invalid or revoked API key"))
			return
		}
		if adminOnly && !k.Admin {
			onErr(w, r, llm.Errorf(http.StatusForbidden, llm.ErrPermission, "this endpoint needs an admin key"))
			return
		}
		if e := admit(r, k); e != nil {
			onErr(w, r, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admit records an authenticated key in the request's Info, with its
// default tags overlaid by the request's X-Junction-Tags, and the routing
// metadata from headers and tags.
func admit(r *http.Request, k *keys.Key) *llm.Error {
	info := InfoFrom(r.Context())
	info.Key = k
	info.Tags = k.Tags
	info.CacheControl = r.Header.Get("Cache-Control")
	switch info.CacheMode = strings.ToLower(strings.TrimSpace(r.Header.Get(CacheHeader))); info.CacheMode {
	case "", gateway.CacheExact, "semantic":
	default:
		return llm.BadRequest(CacheHeader, "%s header: %q is not exact or semantic", CacheHeader, r.Header.Get(CacheHeader))
	}
	if h := r.Header.Get(TagsHeader); h != "" {
		tags, err := keys.ParseTags(h)
		if err != nil {
			return llm.BadRequest(TagsHeader, "%s header: %v", TagsHeader, err)
		}
		// The key's team and project win over the request's tags: a
		// request never sets them (keys.OrgTagNames).
		info.Tags = k.RequestTags(tags)
	}
	meta, err := router.MetadataFrom(r.Header, info.Tags)
	if err != nil {
		return llm.BadRequest("", "%v", err)
	}
	info.Meta = meta
	info.Guardrail, info.GuardrailMode = info.Tags["guardrail"], info.Tags["guardrail_mode"]
	// Enforcement comes from the key's own tags, never the request's.
	if k.Tags["guardrail_enforced"] == "true" && k.Tags["guardrail"] != "" {
		info.KeyGuard, info.KeyGuardMode = k.Tags["guardrail"], k.Tags["guardrail_mode"]
	}
	if h := r.Header.Get("X-Junction-Guardrail"); h != "" {
		info.Guardrail = h
	}
	if h := r.Header.Get("X-Junction-Guardrail-Mode"); h != "" {
		info.GuardrailMode = h
	}
	return nil
}
