package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dafnet/daf/demo"
	"github.com/dafnet/daf/dlm"
)

func init() {
	var (
		opts   demo.Options
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run N nodes federating over loopback libp2p on real text and compare DAF with FedAvg, local and central training",
		Long: `demo starts N full DAF nodes in this process, each with its own data dir, identity and
libp2p host on 127.0.0.1, each training the reference diffusion LM's TALoRA banks on its own text
domain. It repeats the run for several seeds and arms (daf, fedavg, local, central, daf_dp), prints a
table of held-out denoising loss per timestep group and writes OUT/results.json, OUT/results.md and
PNG plots of loss per round.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !asJSON {
				opts.Progress = cmd.ErrOrStderr()
			}
			res, err := demo.Run(ctx, opts)
			if errors.Is(err, demo.ErrBadOptions) || errors.Is(err, dlm.ErrData) {
				return badInput(err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			demo.WriteTable(cmd.OutOrStdout(), res)
			cmd.Printf("results: %s/results.json, %s/results.md, plots %s/loss-*.png\n", opts.Out, opts.Out, opts.Out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Nodes, "nodes", 5, "number of nodes (one text domain each)")
	f.IntVar(&opts.Rounds, "rounds", 0, "federation rounds (default 8, --quick 3)")
	f.IntVar(&opts.Seeds, "seeds", 0, "independent repetitions (default 3, --quick 1)")
	f.StringVar(&opts.Out, "out", "out/demo", "output directory")
	f.StringSliceVar(&opts.Data, "data", nil, "text file or directory per node (repeat or comma-separate; default: texts shipped with Go)")
	f.BoolVar(&opts.Quick, "quick", false, "small smoke run (about a minute)")
	f.StringSliceVar(&opts.Arms, "arms", nil, "arms to run (default all: local,central,fedavg,daf,daf_dp)")
	f.BoolVar(&opts.Verbose, "verbose", false, "log every node's rounds")
	f.BoolVar(&asJSON, "json", false, "print the results as one JSON object")
	rootCmd.AddCommand(cmd)
}
