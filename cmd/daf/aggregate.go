package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/aggregate"
	"github.com/dafnet/daf/config"
	"github.com/spf13/cobra"
)

// aggregateFlags are the flags of daf aggregate.
type aggregateFlags struct {
	strategy     string
	configFile   string
	trimFraction float64
	krumF        int
	temperature  float64
	metric       string
	task         string
	loraMode     string
	rank         int
	base         string
	out          string
	asJSON       bool
}

// aggregateSummary is what --json prints.
type aggregateSummary struct {
	Output        string            `json:"output"`
	Strategy      string            `json:"strategy"`
	GroupStrategy map[string]string `json:"group_strategies"`
	LoRAMode      string            `json:"lora_mode"`
	Inputs        int               `json:"inputs"`
	Nodes         []string          `json:"nodes"`
	Contributors  map[string]int    `json:"contributors"`
	Filtered      []string          `json:"filtered,omitempty"`
	Dropped       []string          `json:"dropped,omitempty"`
	Samples       float64           `json:"samples"`
	Kind          string            `json:"kind"`
	Rank          int               `json:"rank,omitempty"`
	LoraAlpha     float64           `json:"lora_alpha,omitempty"`
	SVDRelError   *float64          `json:"svd_rel_error,omitempty"`
	Params        int               `json:"params"`
	KrumF         *int              `json:"krum_f,omitempty"`
	TrimFraction  float64           `json:"trim_fraction"`
	FanInFanOut   bool              `json:"fan_in_fan_out,omitempty"`
}

func init() {
	var f aggregateFlags
	cmd := &cobra.Command{
		Use:   "aggregate --strategy NAME -o OUT.safetensors IN.safetensors ...",
		Short: "Aggregate update files offline with one strategy or the per-group DAF engine",
		Long: `Read update files (or PEFT adapter directories), aggregate them, and write one
safetensors update whose metadata records the strategy, the contributors and
their count per group (and the rank and alpha of LoRA outputs).

--strategy names one of: daf (the per-group strategies, min_nodes_for_aggregation
and max_nodes_per_round of --config, or the seed's defaults), weighted_average,
quality_weighted, trimmed_mean, learned_attention, median, krum, multi_krum,
geometric_median, centered_clip. A named strategy aggregates whatever it is given.

--lora-mode factor averages lora_A and lora_B separately (the seed's way);
exact writes stacked factors whose product is exactly the aggregate of the
products (rank up to the sum of the ranks); svd re-factorises that to --rank
and reports the truncation error. Products need complete factors: adapter
files (daf.kind=adapter), or deltas with --base.

Input files are mapped into memory read-only rather than copied. Replacing an
input by a rename while the command runs is safe (the output may even replace
an input). Truncating one in place stops the command with exit 2 naming the
file. Rewriting one in place is not safe: values are checked once, when the
file is read, and the aggregation then uses whatever bytes are there when it
reaches them; a NaN written after the check fails the output check of a mean
but can be lost by median and trimmed mean, leaving a finite wrong value.`,
		Example: "  daf aggregate --strategy trimmed_mean --trim-fraction 0.2 -o agg.safetensors n1.safetensors n2.safetensors n3.safetensors\n" +
			"  daf aggregate --strategy daf --config federation.toml -o agg.safetensors updates/*.safetensors --json\n" +
			"  daf aggregate --strategy weighted_average --lora-mode svd --rank 8 -o merged.safetensors ./adapter1 ./adapter2",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return badInputf("no inputs: give at least one IN.safetensors or PEFT adapter directory")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAggregate(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.strategy, "strategy", "", "aggregation strategy (daf or a strategy name; required)")
	fl.StringVar(&f.configFile, "config", "", "federation.toml for daf's per-group strategies, node bounds and trim_fraction")
	fl.Float64Var(&f.trimFraction, "trim-fraction", 0.1, "trimmed_mean: fraction cut from each side; unset, the trim_fraction of --config")
	fl.IntVar(&f.krumF, "krum-f", -1, "krum/multi_krum: assumed Byzantine count (-1: per group, the largest f with n > 2f+2)")
	fl.Float64Var(&f.temperature, "temperature", 1, "quality_weighted/learned_attention softmax temperature")
	fl.StringVar(&f.metric, "metric", "perplexity_improvement", "quality_weighted metric: perplexity_improvement, task_accuracy or composite")
	fl.StringVar(&f.task, "task", "", "task whose accuracy task_accuracy/composite use (default: the mean over reported tasks)")
	fl.StringVar(&f.loraMode, "lora-mode", "factor", "LoRA mode: factor, exact or svd")
	fl.IntVar(&f.rank, "rank", 0, "svd: target rank, at most min(out, in) of the largest module (default: the largest input rank)")
	fl.StringVar(&f.base, "base", "", "base adapter added to delta inputs so that products can be formed")
	fl.StringVarP(&f.out, "output", "o", "", "output update file (required)")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object on stdout")
	rootCmd.AddCommand(cmd)
}

func runAggregate(cmd *cobra.Command, f aggregateFlags, inputs []string) error {
	if f.strategy == "" {
		return badInputf("--strategy is required (daf or one of %s)", strings.Join(aggregate.Strategies(), ", "))
	}
	if f.strategy != aggregate.EngineStrategy && !isStrategy(f.strategy) {
		return badInputf("--strategy %q: want daf or one of %s", f.strategy, strings.Join(aggregate.Strategies(), ", "))
	}
	if f.out == "" {
		return badInputf("-o/--output is required")
	}
	cfg := config.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = config.Load(f.configFile); err != nil {
			return badInput(fmt.Errorf("--config %s: %w", f.configFile, err))
		}
	}
	opts := aggregate.Options{Temperature: f.temperature, Task: f.task, Rank: f.rank, TrimFraction: cfg.Federation.DAF.TrimFraction}
	if cmd.Flags().Changed("trim-fraction") {
		if !(f.trimFraction >= 0 && f.trimFraction < 0.5) {
			return badInputf("--trim-fraction %v: want a fraction in [0, 0.5)", f.trimFraction)
		}
		opts.TrimFraction = f.trimFraction
	}
	var err error
	if opts.Metric, err = aggregate.ParseQualityMetric(f.metric); err != nil {
		return badInput(fmt.Errorf("--metric: %w", err))
	}
	if opts.LoRAMode, err = aggregate.ParseLoRAMode(f.loraMode); err != nil {
		return badInput(fmt.Errorf("--lora-mode: %w", err))
	}
	if f.rank < 0 {
		return badInputf("--rank %d: want a positive rank", f.rank)
	}
	if f.rank > 0 && opts.LoRAMode != aggregate.SVD {
		return badInputf("--rank applies to --lora-mode svd only")
	}
	if f.krumF < -1 {
		return badInputf("--krum-f %d: want a count ≥ 0, or -1 for the largest f the inputs allow", f.krumF)
	}
	if !(f.temperature > 0) || math.IsInf(f.temperature, 1) {
		return badInputf("--temperature %v: want a finite number > 0", f.temperature)
	}

	updates, mappings, err := readUpdates(inputs, f.base)
	// The inputs' tensors alias these mappings until the output is written;
	// nothing of them outlives this function (the aggregate is always a
	// new tensor, even of one input).
	defer closeMappings(mappings)
	if err != nil {
		return err
	}
	// The reader has checked every input value (one parallel pass over the
	// mapped files), so the aggregator need not pass over them again. Adding
	// a base makes new values, which can overflow to infinity: those are
	// scanned.
	opts.InputsFinite = f.base == ""
	summary := aggregateSummary{Output: f.out, Strategy: f.strategy, LoRAMode: opts.LoRAMode.String(), Inputs: len(updates),
		TrimFraction: opts.TrimFraction}
	if strings.Contains(f.strategy, "krum") || f.strategy == aggregate.EngineStrategy {
		// -1 is resolved per group from the updates that group really
		// gets (after max_nodes_per_round), not from the number of files.
		opts.KrumF = f.krumF
		if f.krumF < 0 {
			opts.KrumF = aggregate.KrumFAuto
		}
		summary.KrumF = &opts.KrumF
	}

	var out *adapter.Update
	var rep *aggregate.Report
	// An input truncated in place since it was read would make its pages
	// fault with SIGBUS; under the guard that is an input error naming the
	// file instead of a crash.
	var aggErr error
	if gerr := adapter.Guard(mappings, func() {
		out, rep, summary.Filtered, summary.Dropped, aggErr = aggregateInputs(cmd, f, cfg, opts, updates)
	}); gerr != nil {
		return badInput(gerr)
	}
	if aggErr != nil {
		return aggErr
	}
	if err := adapter.WriteFile(f.out, out); err != nil {
		return fmt.Errorf("writing %s: %w", f.out, err)
	}
	if !f.asJSON {
		return printAggregate(cmd.OutOrStdout(), out, rep)
	}
	summary.GroupStrategy = rep.Strategies
	summary.Contributors = rep.Contributors
	if err := json.Unmarshal([]byte(out.Meta.Extra[aggregate.MetaContributors]), &summary.Nodes); err != nil {
		return fmt.Errorf("contributors of %s: %w", f.out, err)
	}
	summary.Samples, summary.Kind, summary.Params = out.Meta.Samples, string(out.Meta.Kind), out.NumParams()
	summary.Rank, summary.LoraAlpha, summary.FanInFanOut = out.Meta.Rank, out.Meta.LoraAlpha, out.Meta.FanInFanOut
	if opts.LoRAMode != aggregate.Factor {
		e := rep.SVDRelError
		summary.SVDRelError = &e
	}
	return json.NewEncoder(cmd.OutOrStdout()).Encode(summary)
}

// mergeEngineOptions keeps the config's values for what the command line
// did not set.
func mergeEngineOptions(fromConfig, flags aggregate.Options, cmd *cobra.Command) aggregate.Options {
	o := flags
	if !cmd.Flags().Changed("trim-fraction") {
		o.TrimFraction = fromConfig.TrimFraction
	}
	return o
}

// aggregateInputs runs the engine (--strategy daf) or the named strategy
// on the inputs; errors are input errors (exit 2).
func aggregateInputs(cmd *cobra.Command, f aggregateFlags, cfg config.Config, opts aggregate.Options, updates []*adapter.Update) (out *adapter.Update, rep *aggregate.Report, filtered, dropped []string, err error) {
	if f.strategy == aggregate.EngineStrategy {
		ecfg := aggregate.EngineConfigFromConfig(cfg)
		ecfg.Options = mergeEngineOptions(ecfg.Options, opts, cmd)
		eng, err := aggregate.NewEngine(ecfg)
		if err != nil {
			return nil, nil, nil, nil, badInput(err)
		}
		res, err := eng.Aggregate(updates)
		if err != nil {
			return nil, nil, nil, nil, badInput(err)
		}
		return res.Update, res.Report, res.Filtered, res.Dropped, nil
	}
	if out, rep, err = aggregate.AggregateReport(f.strategy, updates, opts); err != nil {
		return nil, nil, nil, nil, badInput(err)
	}
	return out, rep, nil, nil, nil
}

func isStrategy(name string) bool {
	for _, s := range aggregate.Strategies() {
		if s == name {
			return true
		}
	}
	return false
}

// readInput reads one input of daf aggregate. It maps the file: the
// values are only read, and a copy of every input would cost as much as
// aggregating them. Tests replace it by the copying reader to check that
// both give the same aggregate.
var readInput = adapter.ReadFileMapped

// readUpdates reads every input, adding the base to deltas when given.
// Files are mapped rather than copied (adapter.ReadFileMapped): their
// values are only read here, and the caller closes the mappings once the
// aggregate is written, also on error.
func readUpdates(inputs []string, basePath string) ([]*adapter.Update, []*adapter.Mapping, error) {
	var base *adapter.Update
	var baseMap *adapter.Mapping
	var mappings []*adapter.Mapping
	if basePath != "" {
		var err error
		if base, baseMap, err = readInput(basePath); err != nil {
			return nil, nil, badInput(fmt.Errorf("--base %s: %w", basePath, err))
		}
		mappings = append(mappings, baseMap)
	}
	// Files are read concurrently, so that mapping them, faulting their
	// pages in and checking their values keep every core busy; errors are
	// reported for the first bad input in command-line order.
	updates := make([]*adapter.Update, len(inputs))
	inputMaps := make([]*adapter.Mapping, len(inputs))
	errs := make([]error, len(inputs))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(inputs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				updates[i], inputMaps[i], errs[i] = readUpdate(inputs[i], base, basePath, baseMap)
			}
		}()
	}
	for i := range inputs {
		next <- i
	}
	close(next)
	wg.Wait()
	mappings = append(mappings, inputMaps...)
	for _, err := range errs {
		if err != nil {
			return nil, mappings, err
		}
	}
	return updates, mappings, nil
}

func readUpdate(in string, base *adapter.Update, basePath string, baseMap *adapter.Mapping) (*adapter.Update, *adapter.Mapping, error) {
	u, m, err := readInput(in)
	if err != nil {
		return nil, nil, badInput(fmt.Errorf("%s: %w", in, stripPath(err, in)))
	}
	if u.Meta.Node == "" {
		// An aggregate carries an empty daf.node; name it by its file, as
		// the reader does for a file without the key, so that errors and
		// the contributor list say which input is meant.
		u.Meta.Node = strings.TrimSuffix(filepath.Base(filepath.Clean(in)), ".safetensors")
	}
	if base != nil && u.Meta.Kind == adapter.KindDelta {
		// Adding the base reads both mappings, past the reader's guard.
		if gerr := adapter.Guard([]*adapter.Mapping{m, baseMap}, func() { u, err = aggregate.WithBase(u, base) }); gerr != nil {
			return nil, m, badInput(gerr)
		}
		if err != nil {
			return nil, m, badInput(fmt.Errorf("%s with --base %s: %w", in, basePath, err))
		}
	}
	return u, m, nil
}

// closeMappings unmaps the inputs. A failure to unmap cannot affect the
// output, which is already written (or not to be written), so it is not
// reported.
func closeMappings(ms []*adapter.Mapping) {
	for _, m := range ms {
		m.Close()
	}
}

// stripPath avoids "f.safetensors: f.safetensors: ..." when the reader
// already names the file.
func stripPath(err error, path string) error {
	msg := err.Error()
	if strings.HasPrefix(msg, path+": ") {
		return errors.New(strings.TrimPrefix(msg, path+": "))
	}
	return err
}

func printAggregate(w io.Writer, out *adapter.Update, rep *aggregate.Report) error {
	groups := make([]string, 0, len(rep.Contributors))
	for g := range rep.Contributors {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	fmt.Fprintf(w, "strategy %s, lora mode %s, contributors %s\n", out.Meta.Extra[aggregate.MetaStrategy],
		out.Meta.Extra[aggregate.MetaLoRAMode], out.Meta.Extra[aggregate.MetaContributors])
	for _, g := range groups {
		fmt.Fprintf(w, "  group %s: %s over %d updates\n", g, rep.Strategies[g], rep.Contributors[g])
	}
	if out.Meta.Extra[aggregate.MetaLoRAMode] != aggregate.Factor.String() {
		fmt.Fprintf(w, "  LoRA output rank %d, alpha %g, relative truncation error %.3g\n", out.Meta.Rank, out.Meta.LoraAlpha, rep.SVDRelError)
	}
	_, err := fmt.Fprintf(w, "wrote %d parameters, %g samples\n", out.NumParams(), out.Meta.Samples)
	return err
}
