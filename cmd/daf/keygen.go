package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/dafnet/daf/node"
	"github.com/spf13/cobra"
)

func init() {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keygen --data-dir DIR",
		Short: "Create the node identity in DIR (if there is none) and print its peer ID",
		Long: "Creates DIR if needed and DIR/identity.key (Ed25519, PKCS#8 PEM, mode 0600), then prints the\n" +
			"peer ID (12D3Koo…). An existing identity is kept and its peer ID printed: keygen never\n" +
			"replaces a key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return badInputf("--data-dir: required")
			}
			_, pid, created, err := node.LoadOrCreateIdentity(dataDir)
			if err != nil {
				return badInputf("--data-dir %s: %v", dataDir, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(map[string]any{
					"peer_id": string(pid), "created": created, "identity": filepath.Join(dataDir, node.IdentityFile),
				})
			}
			fmt.Fprintln(out, pid)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "node data directory (created if missing)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	rootCmd.AddCommand(cmd)
}
