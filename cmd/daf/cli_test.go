package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the daf command line in-process and returns its exit code and
// standard output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	defer rootCmd.SetOut(nil)
	code := run(args)
	return code, out.String()
}

func TestConfigCheck(t *testing.T) {
	code, out := runCLI(t, "config", "check", "../../federation.toml")
	if code != exitOK || !strings.Contains(out, "ok: groups coarse [700,1000) weighted_average") {
		t.Fatalf("shipped example: exit %d, output %q", code, out)
	}

	broken := filepath.Join(t.TempDir(), "broken.toml")
	doc := "[federation]\nround_interval_secs = 0\nbogus = 1\n[federation.privacy]\nepsilon = nan\n"
	if err := os.WriteFile(broken, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, "config", "check", "--json", broken)
	if code != exitInput {
		t.Fatalf("broken file: exit %d, want %d", code, exitInput)
	}
	for _, want := range []string{`"ok":false`, `"key":"federation.bogus"`, `"key":"federation.round_interval_secs"`, `"key":"federation.privacy.epsilon"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in %s", want, out)
		}
	}
	if code, _ := runCLI(t, "config", "check", filepath.Join(t.TempDir(), "missing.toml")); code != exitInput {
		t.Errorf("missing file: exit %d, want %d", code, exitInput)
	}
}
