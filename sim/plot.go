package sim

import (
	"fmt"
	"image/color"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette gives each strategy a distinct colour.
var palette = [NumStrategies]color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0xe3, 0x77, 0xc2, 0xff},
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff}, color.RGBA{0x17, 0xbe, 0xcf, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xf7, 0xb6, 0xd2, 0xff}, color.RGBA{0xc7, 0xc7, 0xc7, 0xff},
}

// Plot draws path (PNG): goodput relative to honest relays per strategy,
// and each strategy's mean class at its neighbours over time, with the
// idle phase marked.
func (r *Result) Plot(path string, cfg Config) error {
	bars := plot.New()
	bars.Title.Text = fmt.Sprintf("Goodput under congestion vs honest relays (%d relays)", r.Relays)
	bars.Y.Label.Text = "goodput / honest goodput"
	vals := make(plotter.Values, NumStrategies)
	names := make([]string, NumStrategies)
	for st := Strategy(0); st < NumStrategies; st++ {
		vals[st] = r.Ratio[st]
		names[st] = st.String()
	}
	b, err := plotter.NewBarChart(vals, vg.Points(18))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	b.Color = palette[0]
	bars.Add(b)
	half := plotter.NewFunction(func(float64) float64 { return 0.5 })
	half.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	bars.Add(half)
	bars.NominalX(names...)
	bars.X.Tick.Label.Rotation = 0.6
	bars.X.Tick.Label.XAlign = draw.XRight
	bars.Y.Min = 0

	cls := plot.New()
	cls.Title.Text = "Class at neighbours (0 heavy consumer … 3 major contributor)"
	cls.X.Label.Text = "simulated time (s)"
	cls.Y.Label.Text = "mean class"
	cls.Y.Min, cls.Y.Max = 0, 3
	for st := Strategy(0); st < NumStrategies; st++ {
		var xys plotter.XYs
		for _, c := range r.Series {
			if c.Strategy == st && c.Mean() >= 0 {
				n := 0
				for _, v := range c.Count {
					n += v
				}
				if n > 0 {
					xys = append(xys, plotter.XY{X: c.T.Seconds(), Y: c.Mean()})
				}
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		l.Color = palette[st]
		l.Width = vg.Points(1.5)
		cls.Add(l)
		cls.Legend.Add(st.String(), l)
	}
	for _, t := range []time.Duration{cfg.IdleStart, cfg.IdleEnd} {
		x := t.Seconds()
		m, _ := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: 3}})
		m.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		cls.Add(m)
	}
	cls.Legend.Top = true
	cls.Legend.Left = true

	const w, h = 15 * vg.Inch, 5.5 * vg.Inch
	canvas := vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	cs := plot.Align([][]*plot.Plot{{bars, cls}}, tiles, dc)
	bars.Draw(cs[0][0])
	cls.Draw(cs[0][1])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("sim: %w", err)
	}
	return f.Close()
}
