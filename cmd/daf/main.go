// Command daf is the one binary of DAF: a node daemon, the demo, and offline
// tools (aggregate, inspect, privacy, config check). Each subcommand lives in
// its own file and registers itself on rootCmd in an init function.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes fixed by docs: 0 ok, 1 runtime failure, 2 bad usage or input.
const (
	exitOK      = 0
	exitRuntime = 1
	exitInput   = 2
)

// inputError marks a failure caused by what the user passed (a flag, a file,
// a config key): the process exits with code 2 instead of 1.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

// badInput wraps err so that main exits with code 2.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return inputError{err}
}

// badInputf formats a bad-input error.
func badInputf(format string, args ...any) error {
	return inputError{fmt.Errorf(format, args...)}
}

var rootCmd = &cobra.Command{
	Use:           "daf",
	Short:         "Diffusion-Aware Federation: peer-to-peer federated learning of timestep-aware LoRA adapters",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	// Cobra's own flag and argument errors are usage errors.
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "daf: "+err.Error())
	var in inputError
	if errors.As(err, &in) || isCobraUsageError(err) {
		return exitInput
	}
	return exitRuntime
}

// isCobraUsageError recognises cobra's errors for unknown commands and
// wrong argument counts, which it returns as plain errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
