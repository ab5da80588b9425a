package budget

import (
	"math"
	"strconv"
	"strings"
)

// Nanos is an amount of US dollars counted in nano-dollars: 1 USD is
// 1,000,000,000 Nanos. Budgets add and compare integers, never floats, so
// a long run of small charges does not drift. Nano-dollars and not
// micro-dollars because per-token prices are fractions of a micro-dollar
// (gpt-4o-mini input is 0.15 µ$ a token, 150 Nanos): in Nanos the prices
// of the catalog are whole numbers and a request's cost is exact. int64
// holds about 9.2 billion dollars.
type Nanos int64

// Dollar is one US dollar.
const Dollar Nanos = 1_000_000_000

// MaxNanos is the most a Nanos holds; arithmetic on worst cases
// saturates there instead of wrapping to a small or negative amount.
const MaxNanos Nanos = math.MaxInt64

// USD converts an amount in dollars to Nanos, rounding to the nearest
// nano-dollar. Convert prices once, then multiply integers: USD(0.15e-6) is
// exactly 150. Amounts beyond what a Nanos holds saturate.
func USD(dollars float64) Nanos {
	v := math.Round(dollars * float64(Dollar))
	switch {
	case v >= math.MaxInt64 || math.IsNaN(v):
		return MaxNanos
	case v <= math.MinInt64:
		return -MaxNanos
	}
	return Nanos(v)
}

// Plus returns n+m, saturating at MaxNanos (both are amounts of at least
// 0, as worst cases are).
func (n Nanos) Plus(m Nanos) Nanos {
	if m > 0 && n > MaxNanos-m {
		return MaxNanos
	}
	return n + m
}

// Times returns count × n, saturating at MaxNanos; a count or price of 0
// or less costs 0.
func Times(count int64, n Nanos) Nanos {
	if count <= 0 || n <= 0 {
		return 0
	}
	if count > int64(MaxNanos/n) {
		return MaxNanos
	}
	return Nanos(count) * n
}

// SumTokens returns a+b for token counts of at least 0, saturating at
// the most an int64 holds.
func SumTokens(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Dollars returns n in dollars, for display.
func (n Nanos) Dollars() float64 { return float64(n) / float64(Dollar) }

// String formats n as dollars with at least two decimals and no trailing
// zeros beyond them: "$12.50", "$0.00000015", "-$3.00".
func (n Nanos) String() string {
	if n < 0 {
		return "-$" + n.Decimal()[1:]
	}
	return "$" + n.Decimal()
}

// Decimal formats n as an exact decimal number of dollars without the
// currency sign: "12.50", "0.00000015", "-3.00".
func (n Nanos) Decimal() string {
	var b strings.Builder
	u := uint64(n)
	if n < 0 {
		b.WriteByte('-')
		u = uint64(-(n + 1)) + 1 // safe for math.MinInt64
	}
	b.WriteString(strconv.FormatUint(u/uint64(Dollar), 10))
	frac := strconv.FormatUint(u%uint64(Dollar)+uint64(Dollar), 10)[1:] // nine digits
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	b.WriteByte('.')
	b.WriteString(frac)
	return b.String()
}
