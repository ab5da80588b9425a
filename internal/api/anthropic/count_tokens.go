package anthropic

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/tokens"
	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// TokenCountHeader says how POST /v1/messages/count_tokens counted:
// "exact" when the serving model has an offline tokenizer (OpenAI's
// families), "estimate" otherwise (Claude and other families; see
// internal/tokens for the factors).
const TokenCountHeader = "X-Junction-Token-Count"

// countTokens answers POST /v1/messages/count_tokens with
// {"input_tokens": N}: the prompt tokens of a Messages request (system,
// messages, tools, images), counted offline for the model that would
// serve it. Nothing is sent upstream and nothing is billed.
func (h *Handler) countTokens(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, h.MaxBodyBytes)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	// A count request is a Messages request without max_tokens; the
	// decoder requires one, so a placeholder is added when it is absent.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		WriteError(w, r, llm.BadRequest("", "the body must be a JSON object: {\"model\": ..., \"messages\": [...]}"))
		return
	}
	if _, ok := fields["max_tokens"]; !ok {
		fields["max_tokens"] = json.RawMessage("1")
		body, _ = json.Marshal(fields)
	}
	req, err := anthropicwire.DecodeRequest(body)
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	t, err := h.Gateway.Router.Resolve(req.Model)
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	model := t.UpstreamModel
	if model == "" {
		model = t.Model
	}
	n := tokens.Request(model, req)
	how := "estimate"
	if tokens.Exact(model) {
		how = "exact"
	}
	setRequestID(w, r)
	w.Header().Set(TokenCountHeader, how)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"input_tokens":` + strconv.Itoa(n) + "}"))
}
