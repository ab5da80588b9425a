package advisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dec is an exact decimal number, held as a rational so that sums,
// products and quotients never drift: 0.1 + 0.2 is 0.3. It reads from
// JSON and YAML as a number or a numeric string ("0.003", "1e-3", "1/3").
// A Dec is immutable; the zero Dec means "not given" and counts as 0 in
// arithmetic.
type Dec struct{ r *big.Rat }

// ParseDec reads a decimal, a fraction ("1/3") or an exponent form.
func ParseDec(s string) (Dec, error) {
	s = strings.TrimSpace(s)
	r, ok := new(big.Rat).SetString(s)
	if !ok || s == "" {
		return Dec{}, fmt.Errorf("%q is not a number", s)
	}
	return Dec{r}, nil
}

// MustDec is ParseDec for constants; it panics on a bad number.
func MustDec(s string) Dec {
	d, err := ParseDec(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IntDec returns n as a Dec.
func IntDec(n int64) Dec { return Dec{new(big.Rat).SetInt64(n)} }

// FloatDec returns the decimal a person wrote for f: the shortest decimal
// that reads back as f (so 0.003 from a YAML file is exactly 3/1000, not
// the binary float nearest to it).
func FloatDec(f float64) Dec {
	return MustDec(strconv.FormatFloat(f, 'g', -1, 64))
}

func (d Dec) rat() *big.Rat {
	if d.r == nil {
		return new(big.Rat)
	}
	return d.r
}

// Set reports whether the value was given.
func (d Dec) Set() bool { return d.r != nil }

// IsZero reports whether d was not given (for omitzero and omitempty);
// a given 0 is not "zero" here.
func (d Dec) IsZero() bool { return d.r == nil }

// Or returns d if it was given, else def.
func (d Dec) Or(def Dec) Dec {
	if d.r == nil {
		return def
	}
	return d
}

// Add returns d + e.
func (d Dec) Add(e Dec) Dec { return Dec{new(big.Rat).Add(d.rat(), e.rat())} }

// Sub returns d − e.
func (d Dec) Sub(e Dec) Dec { return Dec{new(big.Rat).Sub(d.rat(), e.rat())} }

// Mul returns d × e.
func (d Dec) Mul(e Dec) Dec { return Dec{new(big.Rat).Mul(d.rat(), e.rat())} }

// Quo returns d ÷ e; it panics when e is 0, which callers rule out.
func (d Dec) Quo(e Dec) Dec { return Dec{new(big.Rat).Quo(d.rat(), e.rat())} }

// MulInt returns d × n.
func (d Dec) MulInt(n int64) Dec { return d.Mul(IntDec(n)) }

// Cmp compares d and e: −1, 0 or +1.
func (d Dec) Cmp(e Dec) int { return d.rat().Cmp(e.rat()) }

// Sign returns −1, 0 or +1.
func (d Dec) Sign() int { return d.rat().Sign() }

// Ceil returns the least integer not below d.
func (d Dec) Ceil() int64 {
	r := d.rat()
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

// Float returns the nearest float64, for display and heuristics only.
func (d Dec) Float() float64 {
	f, _ := d.rat().Float64()
	return f
}

// Round returns d rounded to places decimals, half away from zero, as
// decimal text ("12.35").
func (d Dec) Round(places int) string {
	r := d.rat()
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	num := new(big.Int).Mul(r.Num(), scale)
	num.Abs(num)
	// (2·num + den) / (2·den) rounds half up on the magnitude.
	den := r.Denom()
	q := new(big.Int).Add(new(big.Int).Lsh(num, 1), den)
	q.Quo(q, new(big.Int).Lsh(den, 1))
	s := q.String()
	if places > 0 {
		if len(s) <= places {
			s = strings.Repeat("0", places-len(s)+1) + s
		}
		s = s[:len(s)-places] + "." + s[len(s)-places:]
	}
	if r.Sign() < 0 && strings.Trim(s, "0.") != "" {
		s = "-" + s
	}
	return s
}

// String returns the exact decimal when it has at most 12 places, and d
// rounded to 12 places otherwise (1/3 prints as 0.333333333333).
func (d Dec) String() string {
	r := d.rat()
	if r.IsInt() {
		return r.Num().String()
	}
	if n, exact := r.FloatPrec(); exact && n <= 12 {
		return r.FloatString(n)
	}
	return strings.TrimRight(d.Round(12), "0")
}

// Short returns d rounded to places decimals without trailing zeros
// ("100000", "2.5").
func (d Dec) Short(places int) json.Number {
	s := d.Round(places)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return json.Number(s)
}

// Number returns d rounded to places decimals as a JSON number.
func (d Dec) Number(places int) json.Number { return json.Number(d.Round(places)) }

// MarshalJSON writes d as a JSON number.
func (d Dec) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a JSON number or numeric string.
func (d *Dec) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*d = Dec{}
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := ParseDec(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a YAML number.
func (d Dec) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: d.String()}, nil
}

// UnmarshalYAML reads a YAML number or numeric string.
func (d *Dec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a number", n.Line)
	}
	if n.Tag == "!!null" {
		*d = Dec{}
		return nil
	}
	v, err := ParseDec(strings.ReplaceAll(n.Value, "_", ""))
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = v
	return nil
}
