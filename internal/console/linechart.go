package console

import (
	"math"
	"strconv"
	"strings"
)

// A LineChart draws cost against volume as inline SVG: one line per
// series, each with its own colour, dash pattern and marker shape (so the
// lines read without colour), points marked on the lines and vertical
// rules at chosen volumes.
type LineChart struct {
	ID, Title     string
	Width, Height float64
	PlotX, PlotY  float64
	PlotW, PlotH  float64
	PlotRight     float64
	PlotBottom    float64
	TickX         float64
	LegendX       float64
	Lines         []Line
	YTicks        []Tick
	XTicks        []XTick
	Marks         []Mark
	Rules         []Rule
	// top and right are the axes' ends: dollars and requests a day.
	top, right float64
}

// Line is one series.
type Line struct {
	Name, Color, Dash, Points string
	// Markers are points on the line drawn with the series' shape.
	Markers []Marker
	// LegendY places its legend entry.
	LegendY, LegendTextY, LegendX2, LegendMidX float64
	Shape                                      string
}

// Marker is one marker of a line.
type Marker struct{ X, Y float64 }

// XTick is a label on the volume axis.
type XTick struct {
	X    float64
	Text string
}

// Mark is a labelled point (a crossing).
type Mark struct {
	X, Y   float64
	Title  string
	Label  string
	LabelY float64
}

// Rule is a labelled vertical line (today's volume).
type Rule struct {
	X, LabelY float64
	Label     string
}

// dashes and shapes pair with the palette: the n-th series has the n-th
// of each.
var (
	dashes = []string{"", "8 4", "2 3", "10 3 2 3", "4 4", "1 5", "12 2", "6 2 2 2"}
	shapes = []string{"circle", "square", "triangle", "diamond", "cross", "circle", "square", "triangle"}
)

// lineChart builds a chart of ys[i][j] (series j at xs[i]) over the
// volumes xs, which must be increasing from xs[0].
func lineChart(id, title string, names []string, xs []float64, ys [][]float64) *LineChart {
	c := &LineChart{ID: id, Title: title, Width: 760, Height: 320, PlotX: 80, PlotY: 16, PlotW: 480, PlotH: 240}
	c.PlotRight, c.PlotBottom, c.TickX = c.PlotX+c.PlotW, c.PlotY+c.PlotH, c.PlotX-6
	c.LegendX = c.PlotRight + 20
	maxY, maxX := 0.0, 0.0
	for i, row := range ys {
		maxX = math.Max(maxX, xs[i])
		for _, v := range row {
			maxY = math.Max(maxY, v)
		}
	}
	c.top, c.right = niceCeil(maxY), math.Max(maxX, 1)
	for i := 0; i <= 4; i++ {
		c.YTicks = append(c.YTicks, Tick{Y: c.PlotBottom - c.PlotH*float64(i)/4, Text: axis(c.top * float64(i) / 4)})
		v := c.right * float64(i) / 4
		c.XTicks = append(c.XTicks, XTick{X: c.x(v), Text: strconv.FormatFloat(math.Round(v), 'f', -1, 64)})
	}
	every := max(1, len(xs)/10)
	for j, name := range names {
		l := Line{Name: name, Color: palette[j%len(palette)], Dash: dashes[j%len(dashes)], Shape: shapes[j%len(shapes)],
			LegendY: c.PlotY + 20*float64(j) + 7, LegendTextY: c.PlotY + 20*float64(j) + 11}
		l.LegendX2, l.LegendMidX = c.LegendX+28, c.LegendX+14
		var pts []string
		for i, x := range xs {
			px, py := c.x(x), c.y(ys[i][j])
			pts = append(pts, strconv.FormatFloat(px, 'f', 1, 64)+","+strconv.FormatFloat(py, 'f', 1, 64))
			if i%every == 0 {
				l.Markers = append(l.Markers, Marker{X: px, Y: py})
			}
		}
		l.Points = strings.Join(pts, " ")
		c.Lines = append(c.Lines, l)
	}
	return c
}

// x places a volume (requests a day) on the chart.
func (c *LineChart) x(v float64) float64 { return c.PlotX + c.PlotW*v/c.right }

// y places a monthly cost on the chart.
func (c *LineChart) y(v float64) float64 { return c.PlotBottom - c.PlotH*v/c.top }

// mark marks a point: a crossing of two lines.
func (c *LineChart) mark(volume, cost float64, title, label string) {
	c.Marks = append(c.Marks, Mark{X: c.x(volume), Y: c.y(cost), Title: title, Label: label, LabelY: c.y(cost) - 10})
}

// rule draws a labelled vertical line at a volume.
func (c *LineChart) rule(volume float64, label string) {
	c.Rules = append(c.Rules, Rule{X: c.x(volume), LabelY: c.PlotY + 10, Label: label})
}
