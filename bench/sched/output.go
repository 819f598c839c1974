package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/poolrelay/poolrelay/sched"
)

func writeCSV(path string, results []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"case", "class", "offered_load_c", "offered_mbps", "sent_mbps", "share", "drop_rate", "p50_us", "p99_us", "frames_measured", "stalls_removed", "stall_ms_removed"})
	ff := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	us := func(d time.Duration) string { return ff(float64(d)/1e3, 3) }
	for _, r := range results {
		for _, c := range r.class {
			w.Write([]string{r.name, c.class.String(), ff(c.load, 3), ff(c.offered, 1), ff(c.sent, 1),
				ff(c.share, 4), ff(c.dropRate, 5), us(c.p50), us(c.p99),
				strconv.Itoa(c.framesOut), strconv.Itoa(r.stalls), ff(float64(r.removed)/1e6, 3)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var classColors = [3]color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // priority
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // normal
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // deprioritised
}

// drawPlot draws two panels: each class's share of the output per case,
// with the floor marked, and each class's p99 latency per case on a log
// scale.
func drawPlot(path string, results []result, cfg sched.Config) error {
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = r.name
	}
	share := plot.New()
	share.Title.Text = "share of the shaped egress"
	share.Y.Label.Text = "share (%)"
	share.Y.Min, share.Y.Max = 0, 100
	share.NominalX(names...)
	share.Legend.Top, share.Legend.Left = true, true
	const barW = 10
	for i := range peerClasses {
		vals := make(plotter.Values, len(results))
		for j, r := range results {
			vals[j] = 100 * r.class[i].share
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(barW))
		if err != nil {
			return err
		}
		bars.Color = classColors[i]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Points(float64(i-1) * barW)
		share.Add(bars)
		share.Legend.Add(peerClasses[i].String(), bars)
	}
	floor := plotter.NewFunction(func(float64) float64 { return float64(cfg.FloorPercent) })
	floor.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	floor.Color = classColors[2]
	share.Add(floor)
	share.Legend.Add(fmt.Sprintf("floor %d%%", cfg.FloorPercent), floor)

	lat := plot.New()
	lat.Title.Text = "p99 latency, arrival to dequeue"
	lat.Y.Label.Text = "p99 (us, log)"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.NominalX(names...)
	lat.Legend.Top = true
	lo, hi := math.Inf(1), 0.0
	for i := range peerClasses {
		var xys plotter.XYs
		for j, r := range results {
			if c := r.class[i]; c.framesOut > 0 && c.p99 > 0 {
				y := float64(c.p99) / 1e3
				lo, hi = min(lo, y), max(hi, y)
				xys = append(xys, plotter.XY{X: float64(j) + float64(i-1)*0.15, Y: y})
			}
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = classColors[i]
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		lat.Add(sc)
		lat.Legend.Add(peerClasses[i].String(), sc)
	}
	if hi > 0 {
		// Whole decades, and room above the highest point for the legend.
		lat.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
		lat.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi*10)))
	}

	const w, h = 15 * vg.Inch, 5 * vg.Inch
	var canvas vg.CanvasWriterTo
	switch filepath.Ext(path) {
	case ".svg":
		canvas = vgsvg.New(w, h)
	default:
		canvas = vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	plots := [][]*plot.Plot{{share, lat}}
	cs := plot.Align(plots, tiles, dc)
	share.Draw(cs[0][0])
	lat.Draw(cs[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
