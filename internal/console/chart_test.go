package console

import (
	"math"
	"testing"
)

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {0.9, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {0.0042, 0.005}, {140, 200}} {
		if got := niceCeil(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceCeil(%g) = %g, want %g", c.in, got, c.want)
		}
	}
}

// Segments stack from the axis up, each as tall as its share of the
// axis, and a bar's total is the sum of its values.
func TestStack(t *testing.T) {
	c := stack("c", "t", []string{"a", "b"}, []string{"x", "y"}, [][]float64{{1, 3}, {0, 2}}, usd)
	if len(c.Bars) != 2 || c.Bars[0].Total != 4 || c.Bars[1].Total != 2 {
		t.Fatalf("bars %+v", c.Bars)
	}
	bottom := c.PlotY + c.PlotH
	s := c.Bars[0].Segments
	// The axis tops at 5: 1 is a fifth of the height, 3 three fifths.
	if math.Abs(s[0].H-c.PlotH/5) > 1e-9 || math.Abs(s[0].Y+s[0].H-bottom) > 1e-9 || math.Abs(s[1].H-3*c.PlotH/5) > 1e-9 || math.Abs(s[1].Y+s[1].H-s[0].Y) > 1e-9 {
		t.Errorf("segments %+v", s)
	}
	if len(c.Bars[1].Segments) != 1 || c.Bars[1].Segments[0].Series != "y" {
		t.Errorf("a zero value draws no segment: %+v", c.Bars[1].Segments)
	}
	if c.Ticks[4].Text != "$5" || c.Series[1].Pattern != "url(#s1)" {
		t.Errorf("ticks %+v, series %+v", c.Ticks, c.Series)
	}
}
