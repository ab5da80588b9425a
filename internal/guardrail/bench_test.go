package guardrail

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// benchText is mixed English prose with occasional numbers, addresses
// and PII, as chat traffic has.
func benchText(size int) string {
	paras := []string{
		"The quarterly report shows revenue grew 12% to $4.2 million, driven by the new subscription tier launched in March. ",
		"Customers in Europe and Asia responded well; churn fell from 3.1% to 2.4% over the period. ",
		"For questions contact support@example.com or call +1 (415) 555-0132 between 9am and 5pm. ",
		"Our engineers deployed version 2.14.1 to the cluster at 10.0.3.17 on 2024-05-02 without downtime. ",
		"Please review the design document at https://docs.example.com/design/v2 before Thursday's meeting. ",
		"She said the weather in Lisbon was lovely, and the conference talks about distributed systems were excellent. ",
		"Order ORD-004211 was refunded; the card ending 1111 will see the credit in five business days. ",
		"In 1969, astronauts first walked on the Moon, a milestone that inspired generations of scientists and engineers. ",
	}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(paras[i%len(paras)])
	}
	return b.String()[:size]
}

func benchPolicy() Policy {
	p := testPolicy()
	p.TopicPolicy = TopicPolicy{}
	p.ContentPolicy = ContentPolicy{}
	var ents []PIIEntity
	for _, n := range PIITypes() {
		ents = append(ents, PIIEntity{Type: n, Actions: Actions{Action: Anonymize}})
	}
	p.SensitiveInformation.PIIEntities = ents
	for i := 0; i < 200; i++ {
		p.WordPolicy.Words = append(p.WordPolicy.Words, Word{Text: "codename" + strings.Repeat("x", i%7) + string(rune('a'+i%26))})
	}
	return p
}

// BenchmarkScan measures word (200 custom words and the profanity list),
// regex and all PII detectors together on mixed English text.
func BenchmarkScan(b *testing.B) {
	g := mustCompile(b, benchPolicy())
	for _, size := range []int{4 << 10, 256 << 10} {
		text := benchText(size)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			var fs []Finding
			for b.Loop() {
				fs = g.scan(text, Output, fs[:0])
			}
		})
	}
}

// BenchmarkApply is Scan plus building the result and masked text.
func BenchmarkApply(b *testing.B) {
	g := mustCompile(b, benchPolicy())
	text := benchText(4 << 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		g.Apply(context.Background(), Output, text)
	}
}

// BenchmarkStream pushes 4 KiB in 16-byte chunks through a sync guard.
func BenchmarkStream(b *testing.B) {
	g := mustCompile(b, benchPolicy())
	text := benchText(4 << 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		sg := NewStreamGuard(context.Background(), g, Sync)
		for i := 0; i < len(text); i += 16 {
			sg.Push(text[i:min(len(text), i+16)])
		}
		sg.Close()
	}
}

// The parts alone, for the breakdown in docs/guardrails.md.
func BenchmarkWordsOnly(b *testing.B) {
	g := mustCompile(b, Policy{WordPolicy: benchPolicy().WordPolicy})
	benchScan(b, g)
}

func BenchmarkPIIOnly(b *testing.B) {
	g := mustCompile(b, Policy{SensitiveInformation: SensitiveInformationPolicy{PIIEntities: benchPolicy().SensitiveInformation.PIIEntities}})
	benchScan(b, g)
}

func BenchmarkRegexOnly(b *testing.B) {
	g := mustCompile(b, Policy{SensitiveInformation: SensitiveInformationPolicy{Regexes: testPolicy().SensitiveInformation.Regexes}})
	benchScan(b, g)
}

func benchScan(b *testing.B, g *Guard) {
	text := benchText(256 << 10)
	b.SetBytes(int64(len(text)))
	var fs []Finding
	for b.Loop() {
		fs = g.scan(text, Output, fs[:0])
	}
}

func sizeName(n int) string { return strconv.Itoa(n>>10) + "KiB" }
