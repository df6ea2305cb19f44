package main

import "github.com/spf13/cobra"

// unknownSubcommand is the RunE of a command that only groups subcommands
// (config, privacy). Without it cobra treats "daf config chek x" as a
// request for help and exits 0, so a typo in a script would pass silently.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return badInputf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
}
