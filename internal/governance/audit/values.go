package audit

import (
	"regexp"
	"strings"
)

// Secrets are found by value as well as by name: a model's args or env
// can carry "--api-key sk-…" or "postgres://user:password@host" under
// names that say nothing.
var (
	// urlCredentials matches the password in a URL's user information.
	urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):[^/\s@]+@`)
	// bearer matches an HTTP bearer (or basic) credential.
	bearer = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}`)
	// knownKeys matches keys by the prefixes their issuers give them:
	// OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), Junction (jk-),
	// Hugging Face (hf_), GitHub (ghp_, gho_, ghs_, github_pat_), GitLab
	// (glpat-), Slack (xoxb-, xoxp-, …), Stripe (sk_live_, rk_live_), and AWS
	// access key ids (AKIA…, ASIA…).
	knownKeys = regexp.MustCompile(`\b(?:(?:sk|jk)-[A-Za-z0-9_\-]{12,}|hf_[A-Za-z0-9]{12,}|gh[pous]_[A-Za-z0-9]{12,}|github_pat_[A-Za-z0-9_]{12,}|glpat-[A-Za-z0-9_\-]{12,}|xox[abposr]-[A-Za-z0-9\-]{8,}|[rs]k_(?:live|test)_[A-Za-z0-9]{12,}|(?:AKIA|ASIA)[A-Z0-9]{16})\b`)
	// assignment matches name=value, as in env lists ("HF_TOKEN=…"),
	// flags ("--api-key=…") and URL queries ("?token=…").
	assignment = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_.\-]*)=([^\s&#;,"']+)`)
)

// redactValue returns s with every secret it recognises by its shape
// replaced by "[redacted]".
func redactValue(s string) string {
	s = urlCredentials.ReplaceAllString(s, "$1:"+Redacted+"@")
	s = bearer.ReplaceAllString(s, "$1 "+Redacted)
	s = knownKeys.ReplaceAllString(s, Redacted)
	return assignment.ReplaceAllStringFunc(s, func(m string) string {
		name, _, _ := strings.Cut(m, "=")
		if IsSecret(name) {
			return name + "=" + Redacted
		}
		return m
	})
}

// secretFlag reports whether s is a command-line flag whose name says
// secret and whose value is the next argument ("--api-key", "-password").
func secretFlag(s string) bool {
	name, ok := strings.CutPrefix(s, "-")
	if !ok || strings.Contains(s, "=") {
		return false
	}
	return IsSecret(strings.TrimPrefix(name, "-"))
}
