package promptroute

// The lexicon: the words whose presence Extract counts. Lists are
// lowercase ASCII; a word may be in several classes.

// Word classes.
const (
	wCodeKw     uint16 = 1 << iota // a code keyword
	wCodeTopic                     // a programming language or topic
	wMathStrong                    // proof or higher maths
	wMathWeak                      // a maths word
	wSeq                           // a sequencing word
	wImperative                    // an imperative verb
	wReason                        // an analysis word
	wLongForm                      // a long-form piece of writing
	wDetail                        // asks for detail
	wBrief                         // asks for brevity
	wUnit                          // a unit of output length; val is its tokens
	wNumber                        // a number word; val is its value
	wClause                        // opens a clause: the next word may be an imperative
)

// Words that take part in phrases, by id.
const (
	idNone uint8 = iota
	idStep
	idSteps
	idBy
	idCases
	idEdge
	idCorner
	idOffs
	idTrade
	idDepth
	idIn
	idTest
	idTests
	idUnit
)

var lists = []struct {
	class uint16
	words []string
}{
	{wCodeKw, []string{"func", "def", "fn", "const", "var", "println", "printf", "console", "async", "await",
		"lambda", "elif", "struct", "void", "nil", "null", "foreach", "namespace", "typedef", "goroutine",
		"goroutines", "mutex", "malloc", "std", "impl", "pub", "int", "bool", "boolean", "enum", "iota",
		"stdin", "stdout", "argv", "kwargs", "args", "repo", "src"}},
	{wCodeTopic, []string{"python", "golang", "javascript", "typescript", "java", "rust", "kotlin", "swift",
		"ruby", "php", "perl", "scala", "haskell", "sql", "html", "css", "bash", "shell", "powershell",
		"regex", "regexp", "function", "functions", "method", "methods", "algorithm", "algorithms",
		"recursion", "recursive", "compile", "compiler", "refactor", "debug", "debugging", "bug", "bugs",
		"code", "coding", "program", "programs", "programming", "script", "implement", "implementation",
		"api", "endpoint", "database", "query", "json", "yaml", "dockerfile", "docker", "kubernetes",
		"terraform", "leetcode", "unittest", "pytest", "react", "django", "flask", "nodejs", "npm", "git",
		"linux", "cpp", "segfault", "traceback", "stacktrace", "exception", "concurrency", "thread",
		"threads", "multithreaded", "deadlock", "cache", "lru", "hashmap", "generics",
		"interface", "class", "classes", "framework", "js", "parser", "parse", "parsing", "rails",
		"microservices", "autoscaler", "pod", "pods", "helm", "nginx", "graphql", "grpc", "serializer",
		"serializers", "bytecode", "csv", "backend", "frontend"}},
	{wMathStrong, []string{"prove", "proof", "proofs", "theorem", "lemma", "integral", "integrals", "integrate",
		"derivative", "derivatives", "differentiate", "eigenvalue", "eigenvalues", "eigenvector",
		"eigenvectors", "determinant", "polynomial", "polynomials", "logarithm", "calculus", "combinatorics",
		"induction", "asymptotic", "fourier", "laplace", "differential", "bayesian", "quadratic",
		"trigonometric", "diophantine", "modular", "congruence", "topology", "manifold", "homomorphism",
		"isomorphism", "lagrangian", "hessian", "jacobian", "stochastic", "markov", "irrational"}},
	{wMathWeak, []string{"solve", "calculate", "compute", "equation", "equations", "probability", "sum",
		"product", "limit", "percent", "percentage", "average", "mean", "median", "variance", "ratio",
		"fraction", "area", "volume", "matrix", "matrices", "vector", "vectors", "prime", "primes",
		"factorial", "inequality", "geometry", "triangle", "hypotenuse", "algebra", "formula", "expected",
		"converge", "converges", "series", "sequence", "optimize", "minimize", "maximize", "root", "roots"}},
	{wSeq, []string{"then", "next", "finally", "afterwards", "afterward", "lastly", "subsequently",
		"additionally", "secondly", "thirdly", "furthermore", "moreover"}},
	{wImperative, []string{"write", "explain", "list", "compare", "summarize", "summarise", "implement",
		"design", "create", "analyze", "analyse", "calculate", "describe", "prove", "derive", "evaluate",
		"translate", "build", "generate", "refactor", "optimize", "debug", "fix", "add", "convert", "outline",
		"draft", "plan", "review", "find", "show", "give", "provide", "make", "solve", "compute", "identify",
		"discuss", "propose", "suggest", "rewrite", "extend", "include", "use", "ensure", "handle", "test",
		"document", "justify", "estimate", "determine", "generalize", "generalise", "verify", "check",
		"sketch", "state", "modify", "diagonalize", "work", "simplify", "expand", "plot", "simulate",
		"benchmark", "profile", "deploy", "configure", "migrate", "classify", "rank", "read"}},
	{wReason, []string{"analyze", "analyse", "analysis", "analyzing", "analysing", "compare", "comparing",
		"contrast", "evaluate", "evaluating", "critique", "justify", "derive", "tradeoffs", "tradeoff",
		"rigorous", "rigorously", "optimize", "optimise", "architecture", "design", "scalable",
		"scalability", "complexity", "implications", "reasoning", "consistency", "correctness",
		"invariants", "bottlenecks", "counterexample"}},
	{wLongForm, []string{"essay", "report", "article", "chapter", "story", "thesis", "whitepaper", "paper",
		"documentation", "tutorial", "guide", "blog", "proposal", "specification", "novel", "screenplay",
		"curriculum", "syllabus", "manual", "overview"}},
	{wDetail, []string{"detailed", "comprehensive", "thorough", "thoroughly", "exhaustive", "extensive",
		"lengthy", "elaborate"}},
	{wBrief, []string{"brief", "briefly", "short", "concise", "concisely", "succinct", "succinctly", "tldr",
		"quick", "quickly"}},
	{wClause, []string{"and", "then", "also", "plus"}},
}

// units maps a unit of length to its tokens.
var units = map[string]float64{
	"word": 1.35, "words": 1.35, "sentence": 25, "sentences": 25, "paragraph": 130, "paragraphs": 130,
	"page": 650, "pages": 650, "line": 12, "lines": 12, "tokens": 1, "characters": 0.25, "chars": 0.25,
	"examples": 40, "items": 40, "ideas": 40, "points": 40, "bullets": 40, "questions": 40, "tips": 40,
	"slides": 80, "chapters": 3000, "chapter": 3000,
}

var numberWords = map[string]float64{
	"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
	"ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100,
	"thousand": 1000, "couple": 2, "few": 3, "several": 4,
}

var phraseWords = map[string]uint8{
	"step": idStep, "steps": idSteps, "by": idBy, "cases": idCases, "edge": idEdge, "corner": idCorner,
	"offs": idOffs, "trade": idTrade, "depth": idDepth, "in": idIn, "test": idTest, "tests": idTests,
	"unit": idUnit,
}

// latexCommands are the LaTeX commands that mark maths.
var latexCommands = map[string]bool{
	"frac": true, "int": true, "iint": true, "oint": true, "sum": true, "prod": true, "sqrt": true, "lim": true,
	"partial": true, "nabla": true, "infty": true, "cdot": true, "times": true, "leq": true, "geq": true,
	"neq": true, "alpha": true, "beta": true, "gamma": true, "delta": true, "theta": true, "lambda": true,
	"sigma": true, "mu": true, "pi": true, "epsilon": true, "mathbb": true, "mathbf": true, "binom": true,
	"log": true, "ln": true, "sin": true, "cos": true, "tan": true, "begin": true, "left": true, "right": true,
	"vec": true, "hat": true, "det": true, "pmatrix": true, "bmatrix": true, "forall": true, "exists": true,
}

// entry is a word of the lexicon.
type entry struct {
	word  string
	tag   uint32 // the top half of the word's hash, checked first
	class uint16
	id    uint8   // its phrase id
	val   float64 // its tokens (wUnit) or value (wNumber)
}

// lexicon is an open-addressing table hashed with wordHash; a Go map
// costs three times as much per lookup here, and Extract looks up every
// word of the prompt.
var lexicon [2048]entry

// maxWord is the longest word looked up; longer words are in no list.
const maxWord = 16

func init() {
	add := func(w string, f func(*entry)) {
		h := uint64(fnvOffset)
		for i := 0; i < len(w); i++ {
			h = wordHash(h, w[i])
		}
		for i := h & lexMask; ; i = (i + 1) & lexMask {
			e := &lexicon[i]
			if e.word == "" || e.word == w {
				e.word, e.tag = w, uint32(h>>32)
				f(e)
				return
			}
		}
	}
	for _, l := range lists {
		for _, w := range l.words {
			add(w, func(e *entry) { e.class |= l.class })
		}
	}
	for w, v := range units {
		add(w, func(e *entry) { e.class |= wUnit; e.val = v })
	}
	for w, v := range numberWords {
		add(w, func(e *entry) { e.class |= wNumber; e.val = v })
	}
	for w, id := range phraseWords {
		add(w, func(e *entry) { e.id = id })
	}
}

const lexMask = uint64(len(lexicon) - 1)

const (
	fnvOffset = 0xcbf29ce484222325
	fnvPrime  = 0x100000001b3
)

// wordHash adds byte c to FNV-1a hash h.
func wordHash(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

// lookup returns the lexicon's entry for the lowered word w with hash h,
// or nil.
func lookup(w []byte, h uint64) *entry {
	tag := uint32(h >> 32)
	for i := h & lexMask; ; i = (i + 1) & lexMask {
		e := &lexicon[i]
		if e.word == "" {
			return nil
		}
		if e.tag == tag && e.word == string(w) {
			return e
		}
	}
}

// lower maps ASCII letters to lower case and other bytes to themselves.
var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()
