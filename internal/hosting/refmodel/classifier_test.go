package refmodel

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// split holds out every fifth example of each label for testing.
func split(t *testing.T) (train, test []example) {
	t.Helper()
	all, err := readIntents(corpus)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ex := range all {
		if seen[ex.label]%5 == 0 {
			test = append(test, ex)
		} else {
			train = append(train, ex)
		}
		seen[ex.label]++
	}
	return train, test
}

func TestClassifierHeldOutAccuracy(t *testing.T) {
	train, test := split(t)
	c, err := newClassifier(trainClassifier(train, demoAlpha))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.labels) != 5 {
		t.Fatalf("labels %v, want the five intents", c.labels)
	}
	probs := make([]float64, len(c.labels))
	correct := 0
	confusion := map[string]int{}
	for _, ex := range test {
		got := c.labels[c.posteriorInto(ex.text, probs)]
		if got == ex.label {
			correct++
		} else {
			confusion[ex.label+"→"+got]++
		}
	}
	acc := float64(correct) / float64(len(test))
	t.Logf("held-out accuracy %.3f on %d lines (train %d); misses %v", acc, len(test), len(train), confusion)
	if chance := 1 / float64(len(c.labels)); acc < 0.8 {
		t.Fatalf("held-out accuracy %.3f, want > 0.8 (chance is %.2f)", acc, chance)
	}
}

func TestClassifyIsDeterministicAndNormalised(t *testing.T) {
	a, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	b, err := parse(mustTrain(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"I was charged twice this month",
		"the api returns 502 errors",
		"HOW do I reset my password?",
		"please add a dark mode",
		"thank you, the support team was brilliant",
		"",
		"zzz qqq",
	} {
		pa, pb := a.Classify(text), b.Classify(text)
		if pa.Label != pb.Label || !slices.Equal(pa.Probs, pb.Probs) {
			t.Fatalf("%q: two loads disagree: %+v vs %+v", text, pa, pb)
		}
		sum := 0.0
		for _, p := range pa.Probs {
			sum += p
		}
		if math.Abs(sum-1) > 1e-9 || pa.Score != slices.Max(pa.Probs) {
			t.Fatalf("%q: probs %v sum to %v, score %v", text, pa.Probs, sum, pa.Score)
		}
	}
}

func TestClassifyReadsIntent(t *testing.T) {
	m, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]string{
		"you billed my card twice, I want a refund":        "billing",
		"Everything returns HTTP 503 and the site is down": "outage",
		"I can't log in: my two factor codes are rejected": "account",
		"Would you consider adding an export to CSV?":      "feature_request",
		"Thanks so much, your team is wonderful!":          "praise",
	} {
		if got := m.Classify(text); got.Label != want {
			t.Errorf("%q → %s (%.2f), want %s", text, got.Label, got.Score, want)
		}
	}
}

func TestUnknownTextGetsThePrior(t *testing.T) {
	m, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	empty, unknown := m.Classify(""), m.Classify("xylophone quokka")
	if !slices.Equal(empty.Probs, unknown.Probs) {
		t.Fatalf("unseen words should be ignored: %v vs %v", empty.Probs, unknown.Probs)
	}
	for l, p := range empty.Probs {
		if want := math.Exp(m.cls.logPrior[l]); math.Abs(p-want) > 1e-12 {
			t.Fatalf("label %d: %v, want prior %v", l, p, want)
		}
	}
}

func TestClassifyIntoDoesNotAllocate(t *testing.T) {
	m, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	probs := make([]float64, m.NumLabels())
	text := "my invoice shows a charge I do not recognise, please refund it"
	if n := testing.AllocsPerRun(100, func() { m.ClassifyInto(text, probs) }); n != 0 {
		t.Fatalf("ClassifyInto allocates %v times per call", n)
	}
	long := strings.Repeat("supercalifragilistic ", 40) + "refund"
	if got := m.Labels()[m.ClassifyInto(long, probs)]; got != "billing" {
		t.Fatalf("long text → %s", got)
	}
}

func TestFeatures(t *testing.T) {
	var got []string
	eachFeature("Can't LOG-in, café’s wifi!", func(f []byte) { got = append(got, string(f)) })
	want := []string{"cant", "log", "cant log", "in", "log in", "café", "in café", "wifi", "café wifi"}
	if !slices.Equal(got, want) {
		t.Fatalf("features %q, want %q", got, want)
	}
	// Long texts exercise the buffer compaction: bigrams must stay exact.
	words := strings.Fields(strings.Repeat("alpha beta gamma delta ", 30))
	got = got[:0]
	eachFeature(strings.Join(words, " "), func(f []byte) { got = append(got, string(f)) })
	for i, w := range words {
		at := 2*i - 1
		if i == 0 {
			at = 0
		}
		if got[at] != w || i > 0 && got[at+1] != words[i-1]+" "+w {
			t.Fatalf("feature %d: %q %q", i, got[at], got[at+1])
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	m, err := Demo()
	if err != nil {
		b.Fatal(err)
	}
	text := "I was charged twice for the same month, please refund"
	for b.Loop() {
		m.Classify(text)
	}
}

func BenchmarkClassifyInto(b *testing.B) {
	m, err := Demo()
	if err != nil {
		b.Fatal(err)
	}
	probs := make([]float64, m.NumLabels())
	text := "I was charged twice for the same month, please refund"
	b.ReportAllocs()
	for b.Loop() {
		m.ClassifyInto(text, probs)
	}
}
