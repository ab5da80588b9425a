package promptroute

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// EmbedWith returns an EmbedFunc that calls model on e, an embeddings
// provider Junction already has (an OpenAI-compatible server it hosts, or
// a provider adapter). It asks for floats and also reads the base64 form
// some servers send regardless.
func EmbedWith(e llm.Embedder, model string) EmbedFunc {
	return func(ctx context.Context, texts []string) ([][]float32, error) {
		input, err := json.Marshal(texts)
		if err != nil {
			return nil, err
		}
		resp, err := e.Embed(ctx, &llm.EmbedRequest{Model: model, Input: input, EncodingFormat: "float"})
		if err != nil {
			return nil, err
		}
		var data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		}
		if err := json.Unmarshal(resp.Data, &data); err != nil {
			return nil, fmt.Errorf("embeddings from %s: %w", model, err)
		}
		if len(data) != len(texts) {
			return nil, fmt.Errorf("embeddings from %s: got %d for %d inputs", model, len(data), len(texts))
		}
		out := make([][]float32, len(texts))
		for _, d := range data {
			if d.Index < 0 || d.Index >= len(out) || out[d.Index] != nil {
				return nil, fmt.Errorf("embeddings from %s: bad or repeated index %d", model, d.Index)
			}
			v, err := decodeEmbedding(d.Embedding)
			if err != nil {
				return nil, fmt.Errorf("embeddings from %s: input %d: %w", model, d.Index, err)
			}
			out[d.Index] = v
		}
		return out, nil
	}
}

// decodeEmbedding reads a JSON array of numbers or a base64 string of
// little-endian float32s.
func decodeEmbedding(raw json.RawMessage) ([]float32, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			return nil, fmt.Errorf("embedding is not base64 float32s")
		}
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, nil
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}
