package audit

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted replaces a secret's value.
const Redacted = "[redacted]"

// secretWords mark a JSON member's name as holding a secret when the name
// contains one of them (case-insensitive). "webhook" is among them because
// webhook URLs commonly carry their token in the path.
var secretWords = []string{"secret", "password", "passwd", "token", "apikey", "api_key", "api-key", "authorization",
	"credential", "private", "webhook", "signature", "session"}

// secretNames mark a member as a secret when its whole name is one of
// them: "key" is the plaintext of a key Junction just issued.
var secretNames = []string{"key", "admin_key", "access_key"}

// IsSecret reports whether a JSON member of this name is redacted.
func IsSecret(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretNames {
		if n == s {
			return true
		}
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact returns the JSON document b with the value of every member
// whose name IsSecret replaced by "[redacted]", at any depth, and with
// every secret recognised by its value redacted inside the strings that
// remain: URL passwords, bearer tokens, keys with a known prefix (sk-,
// sk-ant-, jk-, hf_, AKIA…), name=value pairs whose name says secret, and
// the argument after a flag whose name says secret ("--api-key", "…").
// A document that cannot be parsed is replaced by a note, never kept.
func Redact(b []byte) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return note("unreadable JSON body, not recorded")
	}
	out, err := json.Marshal(redact(v))
	if err != nil {
		return note("unreadable JSON body, not recorded")
	}
	return out
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if IsSecret(k) {
				if x != nil && x != "" {
					t[k] = Redacted
				}
				continue
			}
			t[k] = redact(x)
		}
	case []any:
		for i, x := range t {
			if i > 0 {
				if flag, ok := t[i-1].(string); ok && secretFlag(flag) && x != nil && x != "" {
					t[i] = Redacted
					continue
				}
			}
			t[i] = redact(x)
		}
	case string:
		return redactValue(t)
	}
	return v
}
