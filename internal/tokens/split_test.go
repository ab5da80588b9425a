package tokens

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	"github.com/tiktoken-go/tokenizer"
)

// The references. Pieces: the split patterns run by regexp2's
// interpreter (wrapped in a group so that the library's generated
// matchers, registered for the bare patterns, are not used: they
// mis-backtrack \s*[\r\n]+ and cut "  \n  \n" in two, where tiktoken
// keeps one piece, as cl100k's token 31879 for it shows). Tokens: the
// library's Encode of each piece, except for whitespace pieces, which its
// matcher would cut again, and pieces holding DEL (U+007F), which its
// matcher drops (tiktoken encodes it as token 221 in cl100k): those go
// through naiveMerge.
var patterns = map[*encoding]string{
	cl100k: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	o200k: `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|` +
		`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|` +
		`\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
}

type ref struct {
	re    *regexp2.Regexp
	codec tokenizer.Codec
}

func reference(t testing.TB, e *encoding) ref {
	t.Helper()
	c, err := tokenizer.Get(tokenizer.Encoding(e.name))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.load(); err != nil {
		t.Fatal(err)
	}
	return ref{re: regexp2.MustCompile("(?:"+patterns[e]+")", regexp2.None), codec: c}
}

func (r ref) pieces(t testing.TB, s string) []string {
	var out []string
	m, err := r.re.FindStringMatch(s)
	for ; m != nil && err == nil; m, err = r.re.FindNextMatch(m) {
		out = append(out, m.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r ref) encode(t testing.TB, e *encoding, s string) []uint32 {
	var out []uint32
	for _, p := range r.pieces(t, s) {
		if strings.TrimSpace(p) == "" || strings.ContainsRune(p, 0x7f) {
			out = append(out, naiveMerge(e, p)...)
			continue
		}
		ids, _, err := r.codec.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			out = append(out, uint32(id))
		}
	}
	return out
}

// naiveMerge is byte-pair merging written as plainly as possible.
func naiveMerge(e *encoding, p string) []uint32 {
	parts := make([]string, len(p))
	for i := 0; i < len(p); i++ {
		parts[i] = p[i : i+1]
	}
	for {
		best, at := uint32(noRank), -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := e.rank(parts[i] + parts[i+1]); ok && r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		parts[at] += parts[at+1]
		parts = append(parts[:at+1], parts[at+2:]...)
	}
	out := make([]uint32, len(parts))
	for i, s := range parts {
		out[i], _ = e.rank(s)
	}
	return out
}

func same(t testing.TB, e *encoding, r ref, s string) {
	t.Helper()
	var got []string
	for i := 0; i < len(s); {
		j := e.next(s, i)
		got = append(got, s[i:j])
		i = j
	}
	if want := r.pieces(t, s); !slices.Equal(got, want) {
		t.Fatalf("%s: pieces of %q:\n got %q\nwant %q", e.name, s, got, want)
	}
	want := r.encode(t, e, s)
	if enc := e.encode(s); !slices.Equal(enc, want) {
		t.Fatalf("%s: %q:\n got %v\nwant %v", e.name, s, enc, want)
	}
	if n := e.count(s); n != len(want) {
		t.Fatalf("%s: count(%q) = %d, want %d", e.name, s, n, len(want))
	}
}

var splitCorpus = []string{
	"",
	"hello world",
	"Hello, World! How're you doing? I'M FINE, they'LL see. It'S ok'd 've 're 'x '",
	"don't stop believin' — it's 12345678 o'clock; 3.14159 × 2 = 6.28318",
	"  leading spaces and trailing spaces   ",
	"line one\nline two\r\n\r\n  indented\n\n\n\tx  \n  \n",
	"tabs\tand\t\tmixed \t spaces\u00a0nbsp\u2003em\u3000ideographic",
	"func main() {\n\tfmt.Println(\"hi\") // comment\n\tx := map[string]int{\"a\": 1}\n}\n",
	"def f(x):\n    return [i**2 for i in range(x) if i % 2 == 0]\n",
	`{"role":"user","content":"Summarize: \"a/b/c\" // path\\n"}`,
	"https://example.com/a/b?c=d&e=f#g //// ///x /y",
	"$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ and \\sum_{n=1}^{\\infty} 1/n^2 = \\pi^2/6",
	"お誕生日おめでとう、世界！日本語のテキストです。",
	"Привет, мир! Это тест. ЗАГЛАВНЫЕ буквы и строчные.",
	"Γειά σου Κόσμε ΑΒΓ αβγ",
	"नमस्ते दुनिया — हिन्दी में पाठ",
	"مرحبا بالعالم",
	"สวัสดีชาวโลก",
	"emoji 😀👍🏽👨‍👩‍👧 and flags 🇺🇸🇯🇵",
	"e\u0301te\u0301 cafe\u0301 \u0301\u0301ABC \u0301ABCdef A\u0301B\u0301c x\u0301Y",
	"ǅungla ǈ ǋ title case ᾈ letters",
	"MixedCASEWordsLikeHTTPServer and XMLHttpRequest and iOS and McDonald's",
	"long'ſ contraction 'ſ with long s",
	"\r\r\n\n\r x \r\n\t\r y",
	"ab" + strings.Repeat("z", 300) + " " + strings.Repeat("ab", 200),
	strings.Repeat("=", 200) + strings.Repeat("-+", 150) + "\n",
	strings.Repeat("é", 120),
	"1234567890 ١٢٣٤٥ ⅠⅡⅢ ½¾ ²³",
	"a\u200bb\u200cc\u200dd zero-width",
	" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ",
	"x /\n/\r\n/ y",
}

func TestSplitMatchesLibrary(t *testing.T) {
	for _, e := range []*encoding{cl100k, o200k} {
		r := reference(t, e)
		for _, s := range splitCorpus {
			same(t, e, r, s)
		}
	}
}

// Random strings over an alphabet chosen to hit every class boundary of
// the split patterns: cases, marks, digits, spaces, newlines, symbols,
// apostrophes and the letters of contractions.
func TestSplitMatchesLibraryRandom(t *testing.T) {
	alphabet := []rune("aAsStTmMlLdDrRvVeE'  \t\n\r\u00a0\u3000.,;:!?/-+=*(){}[]\"#0123456789½ⅫéÉ\u0301\u0308ǅſßあア漢ÆæДд٣😀\u200b")
	n := 3000
	if testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, e := range []*encoding{cl100k, o200k} {
		r := reference(t, e)
		for range n {
			var b strings.Builder
			for range 1 + rng.IntN(40) {
				b.WriteRune(alphabet[rng.IntN(len(alphabet))])
			}
			same(t, e, r, b.String())
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range splitCorpus {
		f.Add(s)
	}
	refs := map[*encoding]ref{}
	for _, e := range []*encoding{cl100k, o200k} {
		refs[e] = reference(f, e)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// The regexp engine sees invalid bytes as U+FFFD and so
			// tokenizes different bytes; counts may differ there.
			return
		}
		for e, r := range refs {
			same(t, e, r, s)
		}
	})
}

// Where the library's generated matchers and tiktoken disagree, the
// scanners follow tiktoken (see reference).
func TestSplitWhereLibraryDiffers(t *testing.T) {
	for _, tc := range []struct {
		e    *encoding
		s    string
		want []uint32
	}{
		{cl100k, "x  \n  \n", []uint32{87, 31879}}, // "  \n  \n" is one cl100k token
		{cl100k, "a\x7fb", []uint32{64, 221, 65}},
	} {
		if err := tc.e.load(); err != nil {
			t.Fatal(err)
		}
		if got := tc.e.encode(tc.s); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q = %v, want %v", tc.e.name, tc.s, got, tc.want)
		}
	}
}
