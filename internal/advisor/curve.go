package advisor

import "github.com/junctionhq/junction/internal/ledger"

// CurvePoint is every option's monthly cost at one volume.
type CurvePoint struct {
	RequestsPerDay float64
	// MonthlyUSD is in the order of the result's options.
	MonthlyUSD []float64
}

// Curve prices each option of s (as Evaluate prices it) at each volume
// (requests a day): the lines of a break-even chart. s must be resolved
// as for Evaluate.
func Curve(s *Scenario, cat *ledger.Catalog, volumes []float64) ([]CurvePoint, error) {
	m, err := compile(s, cat)
	if err != nil {
		return nil, err
	}
	out := make([]CurvePoint, 0, len(volumes))
	for _, v := range volumes {
		x := FloatDec(v)
		p := CurvePoint{RequestsPerDay: x.Float()}
		for _, o := range m.options {
			p.MonthlyUSD = append(p.MonthlyUSD, o.fn.at(x).Float())
		}
		out = append(out, p)
	}
	return out, nil
}
