package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/dafnet/daf/adapter"
	"github.com/spf13/cobra"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE|DIR",
		Short: "Describe an update file or PEFT adapter: tensors, ranks, groups, metadata, totals",
		Long: `Read a TALoRA update file (safetensors, F32/F16/BF16) or a PEFT adapter
(a directory with adapter_model.safetensors, or that file) with the same checks
as a node, and print every tensor's name, shape, dtype and L2 norm, each LoRA
module's rank, the groups, the metadata (defaults filled in) and totals.
A damaged or hostile file exits 2 with the file and tensor at fault.`,
		Example: "  daf inspect updates/node1.safetensors\n  daf inspect --json ./my-peft-adapter",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := adapter.Summarize(args[0])
			if err != nil {
				return badInput(err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(s)
			}
			return printSummary(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object on stdout")
	rootCmd.AddCommand(cmd)
}

func printSummary(out io.Writer, s *adapter.Summary) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s (%s, %d bytes)\n", s.File, s.Format, s.Totals.FileBytes)

	fmt.Fprintln(w, "metadata:")
	keys := make([]string, 0, len(s.Metadata))
	for k := range s.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s\t%s\n", shown(k), shown(s.Metadata[k]))
	}
	if c := s.PEFT; c != nil {
		targets := shown(strings.Join(c.TargetModules, ","))
		if c.TargetModulesRegex != "" {
			targets = shown(c.TargetModulesRegex)
		}
		fmt.Fprintf(w, "peft config:\n  r\t%d\n  lora_alpha\t%g\n  target_modules\t%s\n  fan_in_fan_out\t%v\n", c.R, c.LoraAlpha, targets, c.FanInFanOut)
	}

	for _, g := range s.Groups {
		name := shown(g.Name)
		if g.Range != "" {
			name += " t∈" + g.Range
		}
		fmt.Fprintf(w, "\ngroup %s: %d tensors, %d LoRA modules, %d parameters\n", name, len(g.Tensors), len(g.Modules), g.Params)
		fmt.Fprintln(w, "  tensor\tshape\tdtype\tL2")
		for _, t := range g.Tensors {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%.6g\n", shown(t.Key), shapeString(t.Shape), t.Dtype, t.L2)
		}
		if len(g.Modules) > 0 {
			fmt.Fprintln(w, "  module\trank\t\t")
			for _, m := range g.Modules {
				rank := fmt.Sprint(m.Rank)
				switch {
				case !m.HasA:
					rank += " (lora_A missing)"
				case !m.HasB:
					rank += " (lora_B missing)"
				}
				fmt.Fprintf(w, "  %s\t%s\t\t\n", shown(m.Module), rank)
			}
		}
	}
	t := s.Totals
	fmt.Fprintf(w, "\ntotals: %d groups, %d tensors, %d LoRA modules, %d parameters, %d tensor bytes\n", len(s.Groups), t.Tensors, t.Modules, t.Params, t.Bytes)
	return w.Flush()
}

// shown returns a name or value from the file as it is, or quoted if it
// holds anything but printable characters: a newline or tab would break
// the table and a terminal escape would reach the user's terminal.
func shown(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, "×") + "]"
}
