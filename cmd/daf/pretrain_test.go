package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dafnet/daf/dlm"
	"github.com/spf13/pflag"
)

// runPretrain runs `daf pretrain` in-process with fresh flag values.
func runPretrain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd, _, err := rootCmd.Find([]string{"pretrain"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			_ = sv.Replace(nil)
		} else {
			_ = f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	var out, progress bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&progress)
	defer rootCmd.SetOut(nil)
	defer rootCmd.SetErr(nil)
	// main's run reports the failure on os.Stderr itself.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldErr := os.Stderr
	os.Stderr = w
	code := run(append([]string{"pretrain"}, args...))
	os.Stderr = oldErr
	w.Close()
	var errBuf bytes.Buffer
	_, _ = errBuf.ReadFrom(r)
	return code, out.String(), errBuf.String()
}

func writeText(t *testing.T, path string, n int) {
	t.Helper()
	words := []string{"the ", "light ", "of ", "a ", "prism ", "func ", "return ", "err\n"}
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = append(b, words[(i*7+i/3)%len(words)]...)
	}
	if err := os.WriteFile(path, b[:n], 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPretrainWritesALoadableBase(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "text.txt")
	writeText(t, data, 16<<10)
	out := filepath.Join(dir, "base.safetensors")
	code, stdout, stderr := runPretrain(t, "--data", data, "--steps", "3", "--batch", "4", "--eval-samples", "4", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var report map[string]any
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if report["steps"] != 3.0 || report["out"] != out {
		t.Errorf("report %v", report)
	}
	b, err := dlm.LoadBase(out)
	if err != nil {
		t.Fatal(err)
	}
	if b.Config != dlm.DefaultConfig() {
		t.Errorf("shape %+v", b.Config)
	}
}

func TestPretrainBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.txt")
	writeText(t, small, 100)
	good := filepath.Join(dir, "good.txt")
	writeText(t, good, 16<<10)
	cases := map[string]struct {
		args []string
		want string
	}{
		"missing data": {[]string{"--data", filepath.Join(dir, "nope.txt")}, "nope.txt"},
		"tiny data":    {[]string{"--data", small}, "small.txt"},
		"zero steps":   {[]string{"--data", good, "--steps", "0"}, "steps"},
		"bad lr":       {[]string{"--data", good, "--lr", "-1"}, "learning rate"},
		"bad out":      {[]string{"--data", good, "--steps", "1", "--batch", "1", "--eval-samples", "1", "--out", filepath.Join(dir, "no", "such", "dir", "b.safetensors")}, "--out"},
	}
	for name, tc := range cases {
		code, _, stderr := runPretrain(t, append(tc.args, "--quiet")...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line naming %q", name, code, stderr, tc.want)
		}
	}
}
