package guardrail

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// scanFragments are pieces of generated texts: PII of every kind, valid
// and near misses, policy words in several spellings, regex matches and
// near misses, numbers, punctuation and non-ASCII bytes.
var scanFragments = []string{
	// e-mail
	"jane.doe@example.com", "a_b+c@sub.mail.co.uk", "x@y.z", "bob@localhost", ".bad@x.com", "ok@ex-ample.org",
	"user@123.45", "a@b.cd", "me@-x.com", "me@x-.com", "me.@x.com", "@", "@@", "q@w.e1",
	// phone
	"+1 (415) 555-0132", "+44 20 7946 0958", "(415) 555-0132", "415-555-0132", "415.555.0132", "1-800-555-0199",
	"0044 20 7946 0958", "020 7946 0958", "555-0132", "+(1) 415", "+0 123 456 789", "(415)555-0132", "415 555 0132",
	"+1 415 555 0132 5", "00 44 20 79", "1 415 555 0132",
	// card
	"4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "3782 822463 10005", "4111111111111112",
	"4111 1111 1111 11111", "4111-1111 1111-1111", "6011111111111117", "4111 1111 1111 111",
	// SSN, SIN
	"078-05-1120", "666-12-3456", "123 45 6789", "900-12-3456", "078-00-1120", "078-05-0000", "046 454 286", "046-454-287",
	"846 454 286", "130 692 544", "130-692-544",
	// IBAN
	"GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89370400440532013000", "DE89 3704 0044 0532 0130 00",
	"FR14 2004 1010 0505 0001 3M02 606", "XX12 3456", "GB82 WEST 1234 5698 7654 33", "GB82 WEST 12345698 7654 32", "NO9386011117947",
	// IP
	"10.0.3.17", "192.168.1.256", "::1", "2001:db8::ff00:42:8329", "fe80::1", "1.2.3", "1.2.3.4.5", "001.2.3.4",
	"2001:0db8:85a3:0000:0000:8a2e:0370:7334", "::ffff:10.0.0.1", "a:b", "12:30", "1.2.3.4:80", "2.14.1",
	// URL
	"https://docs.example.com/design/v2", "http://x.io/a?b=(c)", "www.example.org.", "WWW.EXAMPLE.COM", "https://",
	"ftp://x.com", "(see https://a.b/c)", "www.nodot", "HTTP://A.B", "xhttp://a.b", "wwww.a.b", "https://a.b/c).", "http://-x",
	// AWS
	"AKIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLEX", "secret key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"SECRET=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "Secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE=", "secret",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	// MAC
	"00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "00:1A:2B:3C:4D", "001A.2B3C.4D5E", "00:1A:2B:3C:4D:5E:6F", "0:1A:2B:3C:4D:5E",
	// regexes
	"ORD-004211", "ORD-12345", "xORD-123456", "ORD-1234567", "ord-123456", "ORD-", "INV123", "INV12", "acct1234x",
	"AB-1234", "abbbc", "123-ORD", "é12", "K9",
	// words
	"codenamexxa", "CodeNameB", "codenamexxxxxxz", "Project   Falcon", "project\tfalcon", "Project\n\nFalcon", "darn", "DARN",
	"fuck", "FUCKING", "Bullshit", "Scunthorpe", "cocktail", "investment advice", "Which stocks should I buy",
	"asshole", "assholes", "jackass",
	// prose and numbers
	"the", "quarterly", "report", "12%", "$4.2", "3.14", "2024-05-02", "1969", "1111", "9am", "0", "42", "007",
}

var scanSeparators = []string{" ", " ", " ", "", "  ", "\n", ", ", ".", ". ", "-", ":", "(", ")", "+", "@", "_", "/",
	"é", "日本", "\xff", "\t", "'", "\"", "=", "#", "a", "Z", "7"}

func genScanText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for k := 0; k < n; k++ {
		switch r := rng.IntN(10); {
		case r < 6:
			b.WriteString(scanFragments[rng.IntN(len(scanFragments))])
		case r < 8:
			// A random number with separators.
			for g := 0; g < 1+rng.IntN(6); g++ {
				if g > 0 {
					b.WriteString([]string{" ", "-", ".", "(", ")", ") ", ":", "/"}[rng.IntN(8)])
				}
				for d := 0; d < 1+rng.IntN(5); d++ {
					b.WriteByte(byte('0' + rng.IntN(10)))
				}
			}
		default:
			// Random bytes from a small alphabet with the trigger bytes.
			const alpha = "aAkKsSwWhHtTpP09.:-@+()/ _\n"
			for d := 0; d < 1+rng.IntN(12); d++ {
				b.WriteByte(alpha[rng.IntN(len(alpha))])
			}
		}
		b.WriteString(scanSeparators[rng.IntN(len(scanSeparators))])
	}
	return b.String()
}

func scanTestPolicies() []Policy {
	all := benchPolicy()
	extra := benchPolicy()
	extra.SensitiveInformation.Regexes = []Regex{
		{Name: "ORDER_ID", Pattern: `\bORD-\d{6}\b`, Actions: Actions{Action: Anonymize}},
		{Name: "INV", Pattern: `INV[0-9]{3}`, Actions: Actions{Action: Block}},
		{Name: "CODE", Pattern: `\b[A-Z]{2}-\d{4}\b`, Actions: Actions{Action: Anonymize}},
		{Name: "ABC", Pattern: `ab+c`, Actions: Actions{Action: Anonymize}},
		{Name: "ORDI", Pattern: `(?i)ord-\d{6}`, Actions: Actions{Action: Anonymize}},
		{Name: "ACCT", Pattern: `acct\d{4}x`, Actions: Actions{Action: Anonymize}},
		{Name: "BACK", Pattern: `\d{3}-ORD\B`, Actions: Actions{Action: Anonymize}},
		{Name: "UNI", Pattern: `é\d{2}`, Actions: Actions{Action: Anonymize}},
		{Name: "DOT", Pattern: `K.\b`, Actions: Actions{Action: Anonymize}},
		{Name: "NEG", Pattern: `ORD-[^x]{2}`, Actions: Actions{Action: Anonymize}},
		{Name: "ALT", Pattern: `(?:ORD|INV)-\d`, Actions: Actions{Action: Anonymize}},
		{Name: "ANCH", Pattern: `^ORD`, Actions: Actions{Action: Anonymize}},
	}
	onlyWords := Policy{WordPolicy: all.WordPolicy}
	onlyPII := Policy{SensitiveInformation: SensitiveInformationPolicy{PIIEntities: all.SensitiveInformation.PIIEntities}}
	ps := []Policy{all, testPolicy(), extra, onlyWords, onlyPII}
	// Subsets of the PII detectors, which change the trigger table.
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 12; n++ {
		p := Policy{}
		for _, t := range PIITypes() {
			if rng.IntN(2) == 0 {
				p.SensitiveInformation.PIIEntities = append(p.SensitiveInformation.PIIEntities, PIIEntity{Type: t, Actions: Actions{Action: Anonymize}})
			}
		}
		if n%3 == 0 {
			p.SensitiveInformation.Regexes = extra.SensitiveInformation.Regexes[:1+n%len(extra.SensitiveInformation.Regexes)]
		}
		if len(p.SensitiveInformation.PIIEntities) == 0 && len(p.SensitiveInformation.Regexes) == 0 {
			p.WordPolicy = testPolicy().WordPolicy
		}
		ps = append(ps, p)
	}
	return ps
}

// TestScanMatchesReference compares the single-pass scanner with the
// scanner it replaced (reference_test.go) on generated texts with planted
// PII, words, regex matches and near misses.
func TestScanMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	for pi, p := range scanTestPolicies() {
		g := mustCompile(t, p)
		ref, err := newRefGuard(g)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < rounds; n++ {
			text := genScanText(rng, 1+rng.IntN(30))
			for _, src := range []Source{Input, Output} {
				got := g.scan(text, src, nil)
				want := ref.scan(text, src, nil)
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("policy %d text %q\n got %s\nwant %s", pi, text, fmtFindings(got), fmtFindings(want))
				}
			}
		}
	}
}

// TestScanMatchesReferenceOnBenchText checks the benchmark's text too.
func TestScanMatchesReferenceOnBenchText(t *testing.T) {
	g := mustCompile(t, benchPolicy())
	ref, _ := newRefGuard(g)
	text := benchText(64 << 10)
	got, want := g.scan(text, Output, nil), ref.scan(text, Output, nil)
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d findings, want %d", len(got), len(want))
	}
}

func fmtFindings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s/%s%s %d-%d %q %s", f.Policy, f.Type, f.Name, f.Start, f.End, f.Match, f.Action)
	}
	return b.String()
}

// TestNumbersMatchReference compares the scanners on dense runs of
// digits, separators and numbers in every format, where a number span
// starts again at each of its groups and at each '(' before one: the
// scanner reads such a span once and classifies each of those starts from
// it, where the reference reads each one anew.
func TestNumbersMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	rounds := 5000
	if testing.Short() {
		rounds = 500
	}
	toks := []string{" ", "-", ".", "(", ")", "+", " (", ") ", "  ", "--", "...", ":", "@", "a", "x ", "_", "\n",
		"415-555-0132", "4111 1111 1111 1111", "4111111111111111", "078-05-1120", "046 454 286", "10.0.3.17",
		"+44 20 7946 0958", "0044 20 7946 0958", "(415) 555-0132", "1-415-555-0132", "192.168.1.1", "020 7946 0958",
		"ORD-123456", "3782 822463 10005"}
	for pi, p := range scanTestPolicies() {
		g := mustCompile(t, p)
		ref, err := newRefGuard(g)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < rounds; n++ {
			var b strings.Builder
			for k := rng.IntN(25); k >= 0; k-- {
				if rng.IntN(3) == 0 {
					for d := rng.IntN(6); d >= 0; d-- {
						b.WriteByte(byte('0' + rng.IntN(10)))
					}
				} else {
					b.WriteString(toks[rng.IntN(len(toks))])
				}
			}
			text := b.String()
			got, want := g.scan(text, Output, nil), ref.scan(text, Output, nil)
			if (len(got) != 0 || len(want) != 0) && !reflect.DeepEqual(got, want) {
				t.Fatalf("policy %d text %q\n got %s\nwant %s", pi, text, fmtFindings(got), fmtFindings(want))
			}
		}
	}
}
