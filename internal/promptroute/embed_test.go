package promptroute

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// fakeEmbedder answers in OpenAI's embeddings shape, the second input's
// vector first and, when b64 is set, base64-encoded.
type fakeEmbedder struct {
	b64 bool
	got *llm.EmbedRequest
}

func (f *fakeEmbedder) Embed(_ context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	f.got = req
	var texts []string
	if err := json.Unmarshal(req.Input, &texts); err != nil {
		return nil, err
	}
	var data []map[string]any
	for i := len(texts) - 1; i >= 0; i-- {
		v := []float32{float32(len(texts[i])), 0.5, -1}
		var emb any = v
		if f.b64 {
			b := make([]byte, 0, 12)
			for _, x := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": emb})
	}
	raw, _ := json.Marshal(data)
	return &llm.EmbedResponse{Data: raw, Model: req.Model}, nil
}

func TestEmbedWith(t *testing.T) {
	for _, b64 := range []bool{false, true} {
		f := &fakeEmbedder{b64: b64}
		out, err := EmbedWith(f, "text-embedding-3-small")(context.Background(), []string{"ab", "abcd"})
		if err != nil {
			t.Fatal(err)
		}
		if f.got.Model != "text-embedding-3-small" || f.got.EncodingFormat != "float" || string(f.got.Input) != `["ab","abcd"]` {
			t.Errorf("request = %+v", f.got)
		}
		if len(out) != 2 || !slices.Equal(out[0], []float32{2, 0.5, -1}) || !slices.Equal(out[1], []float32{4, 0.5, -1}) {
			t.Errorf("b64=%v: embeddings = %v", b64, out)
		}
	}
	bad := llmEmbedderFunc(func(context.Context, *llm.EmbedRequest) (*llm.EmbedResponse, error) {
		return &llm.EmbedResponse{Data: json.RawMessage(`[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]`)}, nil
	})
	if _, err := EmbedWith(bad, "m")(context.Background(), []string{"a", "b"}); err == nil || !strings.Contains(err.Error(), "repeated index 0") {
		t.Errorf("repeated index: %v", err)
	}
}

type llmEmbedderFunc func(context.Context, *llm.EmbedRequest) (*llm.EmbedResponse, error)

func (f llmEmbedderFunc) Embed(ctx context.Context, r *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	return f(ctx, r)
}
