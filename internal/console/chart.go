package console

import (
	"math"
	"strconv"
	"strings"
)

// A Chart is a stacked bar chart drawn as inline SVG by the server: no
// script, nothing to load. Each series has a colour and a pattern, and
// each bar segment a tooltip with its value, so the chart reads without
// colour; the page prints the same numbers in a table beside it.
type Chart struct {
	// ID names the chart's element in the page.
	ID            string
	Title         string
	Width, Height float64
	// Plot is the drawing area inside the axes.
	PlotX, PlotY, PlotW, PlotH float64
	// PlotRight, TickX, LegendX and LegendTextX place the gridlines'
	// ends, the tick labels and the legend.
	PlotRight, TickX, LegendX, LegendTextX float64
	Series                                 []Series
	Bars                                   []Bar
	Ticks                                  []Tick
	// Overlay is a line drawn over the bars, one point a bar; nil for
	// none.
	Overlay *Overlay
	// top is the value axis's end.
	top float64
}

// Overlay is a dashed line over a bar chart, with its legend entry.
type Overlay struct {
	Name, Points string
	// LegendY, LegendTextY and LegendX2 place its legend entry.
	LegendY, LegendTextY, LegendX2 float64
}

// overlay draws values (one a bar) as a dashed line over the bars, named
// name in the legend under the series.
func (c *Chart) overlay(name string, values []float64) {
	var pts []string
	for i, v := range values {
		if i >= len(c.Bars) {
			break
		}
		b := c.Bars[i]
		y := c.PlotY + c.PlotH - c.PlotH*v/c.top
		pts = append(pts, strconv.FormatFloat(b.X, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64),
			strconv.FormatFloat(b.X+b.W, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
	}
	ly := c.PlotY + 18*float64(len(c.Series))
	c.Overlay = &Overlay{Name: name, Points: strings.Join(pts, " "), LegendY: ly + 7, LegendTextY: ly + 11, LegendX2: c.LegendX + 14}
}

// Series is one stacked layer, named in the legend.
type Series struct {
	Name    string
	Color   string
	Pattern string
	// LegendY and LegendTextY place its legend entry.
	LegendY, LegendTextY float64
}

// Bar is one column: a period, or a group.
type Bar struct {
	Label                string
	X, W, LabelX, LabelY float64
	ShowLabel            bool
	Total                float64
	Segments             []Segment
}

// Segment is one series' part of a bar.
type Segment struct {
	Series      string
	SeriesIndex int
	Fill        string
	Value       float64
	Text        string
	X, W, Y, H  float64
}

// Tick is a gridline on the value axis.
type Tick struct {
	Y    float64
	Text string
}

// palette holds the series colours, distinct for the common forms of
// colour blindness; the layout's SVG patterns s0 to s7 pair each with its
// own texture, so series differ in both.
var palette = []string{"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999"}

// stack builds a chart of dollars by labels (the bars) and series;
// values[i][j] is bar i's value for series j. format writes a value in a
// tooltip; the axis writes round numbers short.
func stack(id, title string, labels, series []string, values [][]float64, format func(float64) string) *Chart {
	return stackTo(id, title, labels, series, values, format, 0)
}

// stackTo is stack with a value axis that reaches at least atLeast (for
// an overlay line that may pass the bars).
func stackTo(id, title string, labels, series []string, values [][]float64, format func(float64) string, atLeast float64) *Chart {
	c := &Chart{ID: id, Title: title, Width: 760, Height: 300, PlotX: 80, PlotY: 16, PlotW: 500, PlotH: 230}
	c.PlotRight, c.TickX = c.PlotX+c.PlotW, c.PlotX-6
	c.LegendX, c.LegendTextX = c.PlotRight+20, c.PlotRight+40
	for j, name := range series {
		c.Series = append(c.Series, Series{Name: name, Color: palette[j%len(palette)],
			Pattern: "url(#s" + strconv.Itoa(j%len(palette)) + ")", LegendY: c.PlotY + 18*float64(j), LegendTextY: c.PlotY + 18*float64(j) + 11})
	}
	maxTotal := 0.0
	for _, row := range values {
		t := 0.0
		for _, v := range row {
			t += v
		}
		maxTotal = math.Max(maxTotal, t)
	}
	top := niceCeil(math.Max(maxTotal, atLeast))
	c.top = top
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.Ticks = append(c.Ticks, Tick{Y: c.PlotY + c.PlotH - c.PlotH*float64(i)/4, Text: axis(v)})
	}
	n := float64(max(len(labels), 1))
	slot := c.PlotW / n
	// Show every label when they fit, else about twelve of them.
	every := max(1, int(math.Ceil(n/12)))
	for i, label := range labels {
		b := Bar{Label: label, X: c.PlotX + slot*float64(i) + slot*0.15, W: slot * 0.7, ShowLabel: i%every == 0}
		b.LabelX, b.LabelY = b.X+b.W/2, c.PlotY+c.PlotH+16
		y := c.PlotY + c.PlotH
		for j, v := range values[i] {
			if v <= 0 {
				continue
			}
			h := c.PlotH * v / top
			y -= h
			b.Segments = append(b.Segments, Segment{Series: series[j], SeriesIndex: j, Fill: c.Series[j].Pattern,
				Value: v, Text: format(v), X: b.X, W: b.W, Y: y, H: h})
			b.Total += v
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for axis ticks
// at round numbers; 0 gives 1.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// axis writes an axis tick: dollars, with no trailing zeros.
func axis(v float64) string { return "$" + strconv.FormatFloat(v, 'f', -1, 64) }
