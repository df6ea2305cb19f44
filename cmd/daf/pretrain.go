package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dafnet/daf/dlm"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func init() {
	def := dlm.DefaultPretrainConfig()
	var (
		out      string
		data     []string
		steps    int
		batch    int
		lr       float64
		seed     uint64
		asJSON   bool
		quiet    bool
		evalSize int
	)
	cmd := &cobra.Command{
		Use:   "pretrain [--out FILE] [--data PATH ...]",
		Short: "Regenerate the reference diffusion LM's base model",
		Long: `Pretrain trains the reference masked-diffusion language model from scratch and
writes it as a safetensors file. Without --data it trains on the default corpus
(Go standard-library source shipped with every Go installation, from packages
that are none of the demo nodes' domains) — the recipe of the shipped
dlm/base.safetensors. With --data it trains on your text
files or directories instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := def
			cfg.Steps, cfg.Batch, cfg.LR, cfg.Seed = steps, batch, lr, seed
			if cfg.Warmup >= cfg.Steps {
				cfg.Warmup = cfg.Steps / 10
			}
			var shards []dlm.Shard
			var err error
			if len(data) > 0 {
				shards, err = dlm.LoadShards(data)
			} else {
				shards, err = dlm.PretrainShards()
			}
			if err != nil {
				return badInput(err)
			}
			corpus := dlm.Interleave(shards)
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var bar *progressbar.ProgressBar
			if !quiet && !asJSON {
				bar = progressbar.NewOptions(cfg.Steps, progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("pretraining"), progressbar.OptionShowCount(),
					progressbar.OptionThrottle(200*time.Millisecond))
			}
			var smoothed float64
			start := time.Now()
			base, err := dlm.Pretrain(corpus, cfg, func(step int, loss float64) {
				if step == 0 {
					smoothed = loss
				}
				smoothed = 0.98*smoothed + 0.02*loss
				if bar != nil {
					bar.Describe(fmt.Sprintf("pretraining (loss %.3f)", smoothed))
					_ = bar.Add(1)
				}
			})
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(stderr)
			}
			if err != nil {
				return badInputIfConfig(err)
			}
			elapsed := time.Since(start)
			if err := base.Save(out); err != nil {
				return badInputf("--out %s: %v", out, err)
			}
			ev, err := dlm.Evaluate(base, nil, dlm.GlobalHeldout(shards), evalSize, 1)
			if err != nil {
				return err
			}
			fi, err := os.Stat(out)
			if err != nil {
				return err
			}
			report := map[string]any{
				"out": out, "bytes": fi.Size(), "params": base.NumParams(), "steps": cfg.Steps,
				"batch": cfg.Batch, "seconds": elapsed.Seconds(), "corpus_bytes": len(corpus),
				"heldout_loss": ev.Loss, "heldout_overall": ev.Overall, "elbo": ev.ELBO,
				"perplexity_bound": ev.PerplexityBound,
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(report)
			}
			fmt.Fprintf(stdout, "wrote %s (%d bytes, %d parameters) after %d steps in %.0fs\n", out, fi.Size(), base.NumParams(), cfg.Steps, elapsed.Seconds())
			fmt.Fprintf(stdout, "held-out loss (nats per masked byte): coarse %.3f  domain %.3f  fine %.3f  overall %.3f\n",
				ev.Loss["coarse"], ev.Loss["domain"], ev.Loss["fine"], ev.Overall)
			fmt.Fprintf(stdout, "ELBO %.3f nats/byte, perplexity bound %.2f\n", ev.ELBO, ev.PerplexityBound)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "dlm/base.safetensors", "file to write the base model to")
	f.StringArrayVar(&data, "data", nil, "text file or directory to train on (repeatable); default: the Go installation's corpus")
	f.IntVar(&steps, "steps", def.Steps, "optimiser steps")
	f.IntVar(&batch, "batch", def.Batch, "sequences per step")
	f.Float64Var(&lr, "lr", def.LR, "peak learning rate")
	f.Uint64Var(&seed, "seed", def.Seed, "random seed (initial weights, windows, masks)")
	f.IntVar(&evalSize, "eval-samples", 128, "held-out sequences per timestep group for the final report")
	f.BoolVar(&asJSON, "json", false, "print one JSON object with the result")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	rootCmd.AddCommand(cmd)
}

// badInputIfConfig maps a rejected configuration (a bad flag value) to exit 2.
func badInputIfConfig(err error) error {
	if errors.Is(err, dlm.ErrConfig) || errors.Is(err, dlm.ErrData) {
		return badInput(err)
	}
	return err
}
