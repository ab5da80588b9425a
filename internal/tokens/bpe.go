package tokens

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/tiktoken-go/tokenizer/codec"
)

// encoding is one tiktoken byte-pair encoding: a pre-tokenizer and the
// rank of every token. The ranks come from the tokenizer library, which
// embeds OpenAI's vocabularies; they are copied once into a compact,
// pointer-free table (a byte blob and an open-addressing index) that the
// garbage collector never has to scan, and looked up without allocating.
type encoding struct {
	name  string
	codec func() *codec.Codec       // the library's codec, the source of the ranks
	next  func(s string, i int) int // end of the piece that starts at i

	once  sync.Once
	err   error
	blob  []byte   // every token's bytes, in rank order
	off   []uint32 // token r is blob[off[r]:off[r+1]]
	slots []uint64 // open addressing by hash: the hash's top 32 bits, then rank+1; 0 when empty
	mask  uint64
}

var (
	// The codecs are named directly, not through tokenizer.Get, so that
	// the linker leaves out the vocabularies Junction does not use (each
	// is compiled in as a map literal of several MB).
	cl100k = &encoding{name: "cl100k_base", codec: codec.NewCl100kBase, next: nextCl100k}
	o200k  = &encoding{name: "o200k_base", codec: codec.NewO200kBase, next: nextO200k}
)

// load builds the rank table on first use; later calls return at once.
func (e *encoding) load() error {
	e.once.Do(func() { e.err = e.build() })
	return e.err
}

func (e *encoding) build() error {
	c := e.codec()
	// Ranks are dense from 0; stop after a long run of unknown ids
	// (special tokens and the end of the table).
	var toks []string
	for id, misses := uint(0), 0; misses < 1024; id++ {
		s, err := c.Decode([]uint{id})
		if err != nil {
			misses++
			s = ""
		} else {
			misses = 0
		}
		toks = append(toks, s)
	}
	for len(toks) > 0 && toks[len(toks)-1] == "" {
		toks = toks[:len(toks)-1]
	}
	if len(toks) == 0 {
		return fmt.Errorf("tokens: %s: empty vocabulary", e.name)
	}
	size := 0
	for _, t := range toks {
		size += len(t)
	}
	e.blob = make([]byte, 0, size)
	e.off = make([]uint32, 0, len(toks)+1)
	for _, t := range toks {
		e.off = append(e.off, uint32(len(e.blob)))
		e.blob = append(e.blob, t...)
	}
	e.off = append(e.off, uint32(len(e.blob)))
	n := 1
	for n < 2*len(toks) {
		n <<= 1
	}
	e.slots = make([]uint64, n)
	e.mask = uint64(n - 1)
	for r, t := range toks {
		if t == "" {
			continue
		}
		h := hash(t)
		i := h & e.mask
		for e.slots[i] != 0 {
			i = (i + 1) & e.mask
		}
		e.slots[i] = h&^0xffffffff | uint64(r+1)
	}
	return nil
}

// hash is FNV-1a over s, 8 bytes at a time: pieces are short, and an
// inlined loop beats a call into a general-purpose hash for them. Keys
// come from the vocabulary and the prompt; a prompt crafted to collide
// only lengthens probing within the table's fixed size.
func hash(s string) uint64 {
	const prime = 0x100000001b3
	h := uint64(0xcbf29ce484222325)
	for len(s) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64([]byte(s[:8]))) * prime
		h ^= h >> 29
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * prime
	}
	h ^= h >> 32
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// rank returns the rank of the token whose bytes are s.
func (e *encoding) rank(s string) (uint32, bool) {
	h := hash(s)
	tag := h &^ 0xffffffff
	for i := h & e.mask; ; i = (i + 1) & e.mask {
		v := e.slots[i]
		if v == 0 {
			return 0, false
		}
		if v&^0xffffffff != tag {
			continue
		}
		r := uint32(v) - 1
		if tok := e.blob[e.off[r]:e.off[r+1]]; string(tok) == s {
			return r, true
		}
	}
}

const noRank = math.MaxUint32

// pairRank is the rank of the token formed by s, or noRank.
func (e *encoding) pairRank(s string) uint32 {
	if r, ok := e.rank(s); ok {
		return r
	}
	return noRank
}

// smallPiece is the length under which merge works in arrays on the
// stack with quadratic scans; longer pieces (rare: long runs of letters
// or symbols) use a heap.
const smallPiece = 128

// count returns the number of tokens of s. The encoding must be loaded.
func (e *encoding) count(s string) int {
	var b [smallPiece + 1]int32
	var r [smallPiece + 1]uint32
	n := 0
	for i := 0; i < len(s); {
		j := e.next(s, i)
		piece := s[i:j]
		if _, ok := e.rank(piece); ok {
			n++
		} else {
			n += len(e.merge(piece, b[:0], r[:0])) - 1
		}
		i = j
	}
	return n
}

// encode returns the token ranks of s. The encoding must be loaded.
func (e *encoding) encode(s string) []uint32 {
	var out []uint32
	for i := 0; i < len(s); {
		j := e.next(s, i)
		piece := s[i:j]
		if r, ok := e.rank(piece); ok {
			out = append(out, r)
		} else {
			b := e.merge(piece, nil, nil)
			for k := 0; k+1 < len(b); k++ {
				r, _ := e.rank(piece[b[k]:b[k+1]])
				out = append(out, r)
			}
		}
		i = j
	}
	return out
}

// merge applies tiktoken's byte-pair merge to piece: while some adjacent
// pair of parts forms a token, merge the pair whose token has the lowest
// rank (the leftmost on ties). It returns the part boundaries, from 0 to
// len(piece); b and r are scratch space for short pieces.
func (e *encoding) merge(piece string, b []int32, r []uint32) []int32 {
	if len(piece) > smallPiece {
		return e.mergeLong(piece)
	}
	// b holds the boundaries; r[k] is the rank of merging the parts
	// that start at b[k] and b[k+1].
	for k := 0; k <= len(piece); k++ {
		b = append(b, int32(k))
		rk := uint32(noRank)
		if k+2 <= len(piece) {
			rk = e.pairRank(piece[k : k+2])
		}
		r = append(r, rk)
	}
	for len(b) > 2 {
		best, at := uint32(noRank), -1
		for k := 0; k+2 < len(b); k++ {
			if r[k] < best {
				best, at = r[k], k
			}
		}
		if at < 0 {
			break
		}
		b = append(b[:at+1], b[at+2:]...)
		r = append(r[:at+1], r[at+2:]...)
		r[at] = e.spanRank(piece, b, at)
		if at > 0 {
			r[at-1] = e.spanRank(piece, b, at-1)
		}
	}
	return b
}

// spanRank is the rank of merging the parts that start at b[k] and
// b[k+1], or noRank when there is no part after them.
func (e *encoding) spanRank(piece string, b []int32, k int) uint32 {
	if k+2 >= len(b) {
		return noRank
	}
	return e.pairRank(piece[b[k]:b[k+2]])
}

// mergeLong is merge in O(n log n) for long pieces: the parts form a
// linked list and candidate merges sit in a min-heap ordered by rank,
// then position; stale candidates are skipped when popped.
func (e *encoding) mergeLong(piece string) []int32 {
	n := int32(len(piece))
	next := make([]int32, n+1) // next boundary, -1 after the last
	prev := make([]int32, n+1)
	rank := make([]uint32, n+1) // rank of merging the parts at k and next[k]
	var h candHeap
	for k := int32(0); k <= n; k++ {
		next[k], prev[k], rank[k] = k+1, k-1, noRank
		if k+2 <= n {
			if rk := e.pairRank(piece[k : k+2]); rk != noRank {
				rank[k] = rk
				h = append(h, cand{rk, k})
			}
		}
	}
	next[n] = -1
	h.init()
	rankAt := func(k int32) uint32 {
		j := next[k]
		if j < 0 || next[j] < 0 {
			return noRank
		}
		return e.pairRank(piece[k:next[j]])
	}
	for len(h) > 0 {
		c := h.pop()
		k := c.pos
		if rank[k] != c.rank {
			continue // stale: the boundary moved or was removed
		}
		j := next[k]
		next[k] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = k
		}
		rank[j] = noRank
		for _, m := range [2]int32{k, prev[k]} {
			if m < 0 {
				continue
			}
			rank[m] = rankAt(m)
			if rank[m] != noRank {
				h.push(cand{rank[m], m})
			}
		}
	}
	var b []int32
	for k := int32(0); k >= 0; k = next[k] {
		b = append(b, k)
	}
	return b
}

type cand struct {
	rank uint32
	pos  int32
}

// candHeap is a binary min-heap of merge candidates by rank, then
// position, so that the leftmost of equal ranks merges first.
type candHeap []cand

func (h candHeap) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].pos < h[b].pos
}

func (h candHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *candHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *candHeap) pop() cand {
	s := *h
	top := s[0]
	s[0] = s[len(s)-1]
	*h = s[:len(s)-1]
	h.down(0)
	return top
}

func (h candHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h.less(c+1, c) {
			c++
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
