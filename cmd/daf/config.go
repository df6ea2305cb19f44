package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dafnet/daf/config"
	"github.com/spf13/cobra"
)

func init() {
	configCmd := &cobra.Command{
		Use:   "config",
		Short: "Work with federation.toml files",
		RunE:  unknownSubcommand,
	}
	var asJSON bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a federation.toml and list every problem at once",
		Long: `Decode and validate a federation.toml. Unknown keys, values of the wrong type
and out-of-range values are all listed in one run, each with its line and key.
Exit 0 when the file is valid, 2 when it is not.`,
		Example: "  daf config check federation.toml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			cfg, err := config.Load(path)
			var probs *config.Problems
			if err != nil && !errors.As(err, &probs) {
				return badInput(err)
			}
			if asJSON {
				out := struct {
					File     string           `json:"file"`
					OK       bool             `json:"ok"`
					Problems []config.Problem `json:"problems"`
					Summary  string           `json:"summary,omitempty"`
				}{File: path, OK: err == nil, Problems: []config.Problem{}}
				if probs != nil {
					out.Problems = probs.List
				} else {
					out.Summary = cfg.Summary()
				}
				if jerr := json.NewEncoder(cmd.OutOrStdout()).Encode(out); jerr != nil {
					return jerr
				}
				if err != nil {
					return badInputf("%s: %d problem(s)", path, len(probs.List))
				}
				return nil
			}
			if err != nil {
				return badInput(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %s\n", path, cfg.Summary())
			return nil
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print one JSON object {file, ok, problems, summary} on stdout")
	configCmd.AddCommand(check)
	rootCmd.AddCommand(configCmd)
}
