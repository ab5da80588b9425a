package bedrock

import "github.com/junctionhq/junction/internal/wire/llm"

// DecodeNative reads an InvokeModel body for model in whichever family it
// is written (Anthropic, OpenAI-style, Llama-style), and returns the
// canonical request with a function that renders an answer in the same
// family. Bedrock batch inference uses it for each record's modelInput.
func DecodeNative(body []byte, model string) (*llm.Request, func(resp *llm.Response, id string) ([]byte, error), error) {
	n, err := nativeFamily(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := n.decode(body, model)
	if err != nil {
		return nil, nil, err
	}
	return req, func(resp *llm.Response, id string) ([]byte, error) { return n.response(resp, id, model) }, nil
}
