package demo

import (
	"encoding/json"
	"fmt"
	"github.com/dafnet/daf/internal/atomicfile"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeOutputs writes results.json, results.md and one PNG per group.
func writeOutputs(dir string, res *Results) error {
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	WriteMarkdown(&md, res)
	if err := atomicfile.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	for _, g := range append(append([]string(nil), res.Groups...), "overall") {
		if err := plotGroup(filepath.Join(dir, "loss-"+g+".png"), res, g); err != nil {
			return fmt.Errorf("plotting %s: %w", g, err)
		}
	}
	return nil
}

// WriteTable prints the terminal table: rows are arms, columns the loss per
// group and overall, global and personal, with the spread over seeds.
func WriteTable(w io.Writer, res *Results) {
	cols := append(append([]string(nil), res.Groups...), "overall")
	fmt.Fprintf(w, "held-out denoising loss, nats per masked token (mean ± sd over %d seed(s)); lower is better\n", len(res.Seeds))
	fmt.Fprintf(w, "%-8s", "arm")
	for _, c := range cols {
		fmt.Fprintf(w, " | %-15s %-15s", c+" global", c+" personal")
	}
	fmt.Fprintln(w)
	for _, name := range armOrder(res.Arms) {
		a := res.Arms[name]
		fmt.Fprintf(w, "%-8s", name)
		for _, c := range cols {
			l := a.Overall
			if c != "overall" {
				l = a.Groups[c]
			}
			fmt.Fprintf(w, " | %-15s %-15s", pm(l.Global, l.GlobalSpread), pm(l.Personal, l.PersonalSpread))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "consensus distance after the last round (daf): %.4g; ε spent: ", res.ConsensusDistance)
	for _, name := range armOrder(res.Arms) {
		if e := res.Arms[name].EpsilonSpent; e > 0 {
			fmt.Fprintf(w, "%s %.3g  ", name, e)
		}
	}
	fmt.Fprintln(w)
}

func pm(mean, sd float64) string { return fmt.Sprintf("%.4f±%.4f", mean, sd) }

// WriteMarkdown renders results.md.
func WriteMarkdown(w io.Writer, res *Results) {
	cols := append(append([]string(nil), res.Groups...), "overall")
	fmt.Fprintf(w, "# DAF demo results\n\n%d nodes (domains: %s), %d rounds, seeds %v, %s, %.0f s.\n\n",
		res.Nodes, strings.Join(res.Domains, ", "), res.Rounds, res.Seeds, res.Machine, res.DurationSecs)
	fmt.Fprintf(w, "Held-out denoising loss in nats per masked token, mean ± sd over seeds (lower is better). ")
	fmt.Fprintf(w, "*global*: each node's model on the mix of all nodes' held-out text; *personal*: each node on its own held-out text.\n\n")
	fmt.Fprintf(w, "| arm |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s global | %s personal |", c, c)
	}
	fmt.Fprintf(w, " consensus distance | ε spent |\n|---|")
	for range cols {
		fmt.Fprintf(w, "---|---|")
	}
	fmt.Fprintf(w, "---|---|\n")
	for _, name := range armOrder(res.Arms) {
		a := res.Arms[name]
		fmt.Fprintf(w, "| %s |", name)
		for _, c := range cols {
			l := a.Overall
			if c != "overall" {
				l = a.Groups[c]
			}
			fmt.Fprintf(w, " %s | %s |", pm(l.Global, l.GlobalSpread), pm(l.Personal, l.PersonalSpread))
		}
		fmt.Fprintf(w, " %.4g | %.3g |\n", a.ConsensusDistance, a.EpsilonSpent)
	}
	fmt.Fprintf(w, "\nPlots: ")
	for _, c := range cols {
		fmt.Fprintf(w, "[%s](loss-%s.png) ", c, c)
	}
	fmt.Fprintln(w)
}

// plotGroup draws the global loss per round of every arm for one group.
// The y axis spans the arms that stay near the starting loss; an arm that
// leaves it by far (DP noise on five nodes does) is clipped at the top and
// marked "off scale" in the legend rather than flattening every other curve.
func plotGroup(path string, res *Results, group string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("held-out loss, %s (global mix)", group)
	p.X.Label.Text = "round"
	p.Y.Label.Text = "nats per masked token"
	lossAt := func(r RoundLoss) float64 {
		if group == "overall" {
			return r.Overall.Global
		}
		return r.Groups[group].Global
	}
	var start float64
	for _, name := range armOrder(res.Arms) {
		if pr := res.Arms[name].PerRound; len(pr) > 0 {
			start = lossAt(pr[0])
			break
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	offScale := map[string]bool{}
	for _, name := range armOrder(res.Arms) {
		for _, r := range res.Arms[name].PerRound {
			if l := lossAt(r); l > 2*start || math.IsNaN(l) {
				offScale[name] = true
			}
		}
		if offScale[name] {
			continue
		}
		for _, r := range res.Arms[name].PerRound {
			lo, hi = math.Min(lo, lossAt(r)), math.Max(hi, lossAt(r))
		}
	}
	for i, name := range armOrder(res.Arms) {
		a := res.Arms[name]
		pts := make(plotter.XYs, 0, len(a.PerRound))
		for _, r := range a.PerRound {
			y := lossAt(r)
			if offScale[name] && !math.IsInf(hi, 0) {
				y = math.Min(y, hi+(hi-lo)*0.1)
			}
			pts = append(pts, plotter.XY{X: float64(r.Round), Y: y})
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		label := name
		if offScale[name] {
			label += " (off scale)"
		}
		p.Legend.Add(label, line)
	}
	if !math.IsInf(lo, 0) && hi > lo {
		pad := (hi - lo) * 0.1
		p.Y.Min, p.Y.Max = lo-pad, hi+2*pad
	}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}
