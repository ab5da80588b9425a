package fakeopenai

import (
	"hash/fnv"
	"strings"
)

// WordDims is the length of WordEmbedding's vectors.
const WordDims = 512

// stopWords are left out by WordEmbedding: they say little about what a
// question asks.
var stopWords = map[string]bool{"the": true, "a": true, "an": true, "is": true, "what": true, "s": true, "of": true,
	"please": true, "tell": true, "me": true}

// WordEmbedding is a deterministic stand-in for an embeddings model, for
// Server.Embedding: each word (lowered, split at anything but letters and
// digits, stop words dropped) adds one at a hashed position, so texts that
// share their words are close and texts that share few are far, as with a
// real model.
func WordEmbedding(text string) []float32 {
	v := make([]float32, WordDims)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	}) {
		if stopWords[w] {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(w))
		v[h.Sum32()%WordDims]++
	}
	return v
}
