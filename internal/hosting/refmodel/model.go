// Package refmodel is Junction's reference model: a small but real model,
// trained from corpora that ship in this package, that the reference model
// server (package modelserver) loads from an artifact directory the way a
// production container loads its weights from SM_MODEL_DIR. It exists so
// that tests and the quick start exercise self-hosted endpoints end to end
// without downloading anything; it is not meant to be a good model.
//
// One artifact holds two heads:
//
//   - a text classifier: multinomial naive Bayes over word unigrams and
//     bigrams with Laplace smoothing, trained on support-ticket lines
//     labelled by intent (account, billing, feature_request, outage,
//     praise);
//   - a word-level trigram language model with stupid backoff, trained on a
//     few kilobytes of prose, that continues a prompt: greedily at
//     temperature 0, by seeded sampling above it, until the end-of-sentence
//     token or a token limit.
//
// # Artifact format
//
// An artifact is a directory holding one file, model.json (FileName), a
// single JSON object. The model keeps raw counts, not probabilities, so the
// file stays small and exact; Load derives the log-probabilities.
//
//	{
//	  "format":  "junction-refmodel/1",     // Format; anything else is refused
//	  "name":    "junction-ref",            // served model id
//	  "version": "1",
//	  "classifier": {
//	    "alpha":    1,                      // Laplace smoothing constant
//	    "features": ["a", "a bug", ...],    // unigrams and "w1 w2" bigrams, sorted
//	    "labels": [                         // sorted by name
//	      {"name": "account", "docs": 67,   // training lines with this label
//	       "counts": [0, 3, 17, 1, ...]}    // pairs: feature index, occurrences
//	    ]
//	  },
//	  "language_model": {
//	    "backoff":  0.1,                    // stupid-backoff factor
//	    "vocab":    ["!", ",", ".", "</s>", "<s>", "a", ...], // sorted
//	    "unigrams": [1, 40, 55, ...],       // count per vocab index
//	    "bigrams":  [0, 3, 1, ...],         // triples: u, v, count
//	    "trigrams": [4, 4, 102, 6, ...]     // quadruples: u, v, w, count
//	  }
//	}
//
// Tuples are sorted, and indices refer to the features or vocab arrays.
// Every training sentence is counted as <s> <s> w1 … wn </s>. Words are
// runs of letters and digits, lower-cased, with inner apostrophes dropped;
// the classifier also drops a final single s from words of four letters or
// more, and the language model also keeps . , ; : ! ? as tokens. WriteDemoArtifact
// writes the same bytes on every run, so an archive of it has a stable hash.
//
// The classifier's posterior is P(label | text) ∝ P(label) · Π P(f | label)
// over the text's features, with P(f | label) = (count + alpha) / (label's
// feature total + alpha · |features|); features unseen in training are
// ignored. The language model scores a candidate w after context (u, v) as
// c(u v w)/c(u v ·) when that trigram was seen, else backoff · c(v w)/c(v ·)
// when that bigram was, else backoff² · c(w)/N.
package refmodel

import "slices"

// Finish reasons reported in Generation.FinishReason.
const (
	// FinishStop means the model produced its end-of-sentence token.
	FinishStop = "stop"
	// FinishLength means generation hit the token limit.
	FinishLength = "length"
)

// DefaultMaxTokens is the token limit of a generation whose
// GenerateOptions.MaxTokens is zero or less.
const DefaultMaxTokens = 64

// Model is a loaded artifact. It is read-only, so one Model may serve any
// number of goroutines at once.
type Model struct {
	name, version string
	cls           *classifier
	lm            *lm
}

// Name returns the model's name from model.json.
func (m *Model) Name() string { return m.name }

// Version returns the model's version from model.json.
func (m *Model) Version() string { return m.version }

// Labels returns the classifier's labels in the order used by Prediction
// and ClassifyInto.
func (m *Model) Labels() []string { return slices.Clone(m.cls.labels) }

// NumLabels returns len(m.Labels()) without copying.
func (m *Model) NumLabels() int { return len(m.cls.labels) }

// Prediction is the classifier's answer for one text.
type Prediction struct {
	// Label is the most probable label.
	Label string
	// Score is the probability of Label.
	Score float64
	// Probs holds the probability of every label, in Labels order.
	Probs []float64
}

// Classify returns the intent of text.
func (m *Model) Classify(text string) Prediction {
	probs := make([]float64, len(m.cls.labels))
	best := m.cls.posteriorInto(text, probs)
	return Prediction{Label: m.cls.labels[best], Score: probs[best], Probs: probs}
}

// ClassifyInto is Classify without allocating: it writes the probability of
// every label, in Labels order, into probs, which must have room for
// NumLabels values, and returns the index of the most probable label.
func (m *Model) ClassifyInto(text string, probs []float64) int {
	return m.cls.posteriorInto(text, probs)
}

// GenerateOptions controls a generation.
type GenerateOptions struct {
	// MaxTokens is the most tokens to generate; zero or less means
	// DefaultMaxTokens.
	MaxTokens int
	// Temperature 0 (or less) picks the highest-scoring token at every
	// step, so the output depends only on the prompt. Above 0, tokens are
	// drawn with probability proportional to score^(1/Temperature).
	Temperature float64
	// Seed seeds the draws when Temperature > 0: the same prompt, options
	// and seed give the same text.
	Seed uint64
}

// Generation is the result of a generation.
type Generation struct {
	// Text is the generated continuation, without the prompt.
	Text string
	// PromptTokens is the number of tokens in the prompt (see CountTokens).
	PromptTokens int
	// Tokens is the number of tokens generated; the end token is not
	// counted.
	Tokens int
	// FinishReason is FinishStop or FinishLength, or "" when the emit
	// function of GenerateFunc stopped it.
	FinishReason string
}

// Generate continues prompt with the language model. Generation starts
// from the last two prompt words the model knows (unknown words and a
// final . ! or ? are skipped), never ends before its first token, and
// stops at the end-of-sentence token or at the token limit. The text
// reads as lower-case words separated by spaces, with punctuation attached
// to the word before it.
func (m *Model) Generate(prompt string, o GenerateOptions) Generation {
	return m.lm.generate(prompt, o, nil)
}

// GenerateFunc is Generate that also hands each piece of text to emit as
// it is produced; the pieces concatenate to Generation.Text. If emit
// returns false generation stops there.
func (m *Model) GenerateFunc(prompt string, o GenerateOptions, emit func(piece string) bool) Generation {
	return m.lm.generate(prompt, o, emit)
}

// CountTokens returns the number of language-model tokens in text: words,
// and the punctuation marks . , ; : ! ? each counted as one. This is the
// unit of Generation's token counts.
func (m *Model) CountTokens(text string) int { return countLMTokens(text) }
