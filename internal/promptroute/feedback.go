package promptroute

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/junctionhq/junction/internal/vec"
)

// EmbedFunc returns one embedding per text, in order. In production it
// calls an embeddings model Junction serves (see EmbedWith); tests pass a
// deterministic fake.
type EmbedFunc func(ctx context.Context, texts []string) ([][]float32, error)

// EmbedError is an Add that failed because of the embeddings: the model
// could not be reached or answered, or its vectors do not fit the store.
type EmbedError struct{ Err error }

func (e *EmbedError) Error() string { return "embed feedback: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *EmbedError) Unwrap() error { return e.Err }

// Feedback is one labelled outcome: whether Model answered Prompt well
// enough. Model is the name the router knows the model by, as in
// Candidate.Model.
type Feedback struct {
	Prompt string `json:"prompt"`
	Model  string `json:"model"`
	Good   bool   `json:"good"`
}

// Limits on feedback fields.
const (
	MaxPromptBytes = 64 << 10
	MaxModelBytes  = 256
	// MaxEmbedBytes is how much of a prompt is embedded: its start, cut
	// at a character boundary, where the task is usually stated. It keeps
	// inputs inside embedding models' limits (8,191 tokens for OpenAI's).
	MaxEmbedBytes = 8 << 10
)

// Validate reports the first problem with f, naming its field.
func (f Feedback) Validate() error {
	switch {
	case f.Prompt == "":
		return errors.New("prompt: required")
	case len(f.Prompt) > MaxPromptBytes:
		return fmt.Errorf("prompt: longer than %d bytes", MaxPromptBytes)
	case !utf8.ValidString(f.Prompt):
		return errors.New("prompt: not valid UTF-8")
	case f.Model == "":
		return errors.New("model: required")
	case len(f.Model) > MaxModelBytes:
		return fmt.Errorf("model: longer than %d bytes", MaxModelBytes)
	}
	return nil
}

// FeedbackStore keeps labelled prompts in the prompt_feedback table and,
// for the nearest-neighbour search, their unit-length embeddings in
// memory: loaded when it opens, appended to as feedback arrives. Search
// is exhaustive, which stays under a millisecond or so up to some ten
// thousand examples (see the benchmark); memory is 4 bytes per dimension
// per example.
type FeedbackStore struct {
	db    *sql.DB
	embed EmbedFunc
	// Now returns the time recorded with new feedback; tests may fix it.
	Now func() time.Time

	addMu sync.Mutex // serialises Add, which embeds, writes, then indexes

	mu      sync.RWMutex
	dims    int
	vecs    []float32 // example i is vecs[i*dims : (i+1)*dims]
	models  []string  // example i's model; strings are shared per model
	good    []bool
	byModel map[string]string // interned model names
	skipped int               // rows not loaded: another dimension
}

// OpenFeedback loads the feedback in db (already migrated by
// store.Open). embed computes the embeddings of new feedback; it must be
// the same model that KNNScorer queries with.
func OpenFeedback(ctx context.Context, db *sql.DB, embed EmbedFunc) (*FeedbackStore, error) {
	if embed == nil {
		return nil, errors.New("promptroute: OpenFeedback needs an embed function")
	}
	s := &FeedbackStore{db: db, embed: embed, byModel: map[string]string{}}
	// The newest row's dimension is the current embedding model's; rows
	// from an earlier model are kept in the table but not searched.
	err := db.QueryRowContext(ctx, `SELECT length(embedding) FROM prompt_feedback ORDER BY id DESC LIMIT 1`).Scan(&s.dims)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("promptroute: load feedback: %w", err)
	}
	s.dims /= 4
	rows, err := db.QueryContext(ctx, `SELECT model, good, embedding FROM prompt_feedback ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("promptroute: load feedback: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var model string
		var good bool
		var blob []byte
		if err := rows.Scan(&model, &good, &blob); err != nil {
			return nil, fmt.Errorf("promptroute: load feedback: %w", err)
		}
		if len(blob) != 4*s.dims {
			s.skipped++
			continue
		}
		v := make([]float32, s.dims)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
		}
		if !vec.Normalize(v) {
			s.skipped++
			continue
		}
		s.append(v, model, good)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("promptroute: load feedback: %w", err)
	}
	return s, nil
}

// append adds one unit vector to the index; s.mu must be held (or s not
// yet shared).
func (s *FeedbackStore) append(v []float32, model string, good bool) {
	m, ok := s.byModel[model]
	if !ok {
		m = model
		s.byModel[model] = m
	}
	s.vecs = append(s.vecs, v...)
	s.models = append(s.models, m)
	s.good = append(s.good, good)
}

// embedBatch is how many prompts go to the embedding model per call.
const embedBatch = 64

// Add embeds and stores the feedback, all or none, and makes it
// searchable at once. It returns how many examples the store now holds.
func (s *FeedbackStore) Add(ctx context.Context, items ...Feedback) (int, error) {
	for i, f := range items {
		if err := f.Validate(); err != nil {
			return 0, fmt.Errorf("feedback %d: %w", i+1, err)
		}
	}
	if len(items) == 0 {
		return s.Len(), nil
	}
	s.addMu.Lock()
	defer s.addMu.Unlock()

	vecs := make([][]float32, 0, len(items))
	for start := 0; start < len(items); start += embedBatch {
		batch := items[start:min(start+embedBatch, len(items))]
		texts := make([]string, len(batch))
		for i, f := range batch {
			texts[i] = embedText(f.Prompt)
		}
		out, err := s.embed(ctx, texts)
		if err != nil {
			return 0, &EmbedError{err}
		}
		if len(out) != len(texts) {
			return 0, &EmbedError{fmt.Errorf("got %d embeddings for %d prompts", len(out), len(texts))}
		}
		vecs = append(vecs, out...)
	}
	s.mu.RLock()
	dims := s.dims
	s.mu.RUnlock()
	if dims == 0 {
		dims = len(vecs[0])
	}
	blobs := make([][]byte, len(vecs))
	for i, v := range vecs {
		if len(v) != dims {
			return 0, &EmbedError{fmt.Errorf("feedback %d: the embedding has %d dimensions, the store holds %d (was the embedding model changed?)", i+1, len(v), dims)}
		}
		blobs[i] = make([]byte, 4*len(v))
		for j, x := range v {
			binary.LittleEndian.PutUint32(blobs[i][4*j:], math.Float32bits(x))
		}
		v = append([]float32(nil), v...) // the caller's slice stays theirs
		if !vec.Normalize(v) {
			return 0, &EmbedError{fmt.Errorf("feedback %d: the embedding is all zeros", i+1)}
		}
		vecs[i] = v
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO prompt_feedback(created_at, prompt, model, good, embedding) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := now().Unix()
	for i, f := range items {
		if _, err := stmt.ExecContext(ctx, ts, f.Prompt, f.Model, f.Good, blobs[i]); err != nil {
			return 0, fmt.Errorf("store feedback: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store feedback: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.dims = dims
	for i, f := range items {
		s.append(vecs[i], f.Model, f.Good)
	}
	return len(s.good), nil
}

// Len returns the number of searchable examples.
func (s *FeedbackStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.good)
}

// LabelCounts counts one model's labels.
type LabelCounts struct {
	Good int `json:"good"`
	Bad  int `json:"bad"`
}

// FeedbackStats describes the searchable feedback.
type FeedbackStats struct {
	Examples   int                    `json:"examples"`
	Dimensions int                    `json:"dimensions"`
	Models     map[string]LabelCounts `json:"models"`
	// Skipped counts stored rows left out of the search because their
	// embedding has another dimension than the newest row's.
	Skipped int `json:"skipped"`
}

// Stats returns the store's counts by model.
func (s *FeedbackStore) Stats() FeedbackStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := FeedbackStats{Examples: len(s.good), Dimensions: s.dims, Models: map[string]LabelCounts{}, Skipped: s.skipped}
	for i, m := range s.models {
		c := st.Models[m]
		if s.good[i] {
			c.Good++
		} else {
			c.Bad++
		}
		st.Models[m] = c
	}
	return st
}

// neighbour is a labelled example near a query.
type neighbour struct {
	sim   float32 // cosine similarity
	model string
	good  bool
}

// nearest returns the k examples most similar to the unit vector q, most
// similar first.
func (s *FeedbackStore) nearest(q []float32, k int) ([]neighbour, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.good) == 0 || k <= 0 {
		return nil, nil
	}
	if len(q) != s.dims {
		return nil, fmt.Errorf("the query embedding has %d dimensions, the feedback store holds %d (was the embedding model changed?)", len(q), s.dims)
	}
	top := make([]neighbour, 0, k+1)
	for i := range s.good {
		sim := vec.Dot(q, s.vecs[i*s.dims:(i+1)*s.dims])
		if len(top) == k && sim <= top[k-1].sim {
			continue
		}
		// Insert in order; k is small.
		j := sort.Search(len(top), func(j int) bool { return top[j].sim < sim })
		top = append(top, neighbour{})
		copy(top[j+1:], top[j:])
		top[j] = neighbour{sim: sim, model: s.models[i], good: s.good[i]}
		if len(top) > k {
			top = top[:k]
		}
	}
	return top, nil
}

// embedText returns the part of a prompt that is embedded.
func embedText(s string) string {
	if len(s) <= MaxEmbedBytes {
		return s
	}
	cut := MaxEmbedBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
