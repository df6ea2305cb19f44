package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runCLI runs the daf command line in-process and returns its exit code and
// standard output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	resetFlags(rootCmd)
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	defer rootCmd.SetOut(nil)
	code := run(args)
	return code, out.String()
}

// resetFlags puts every flag back to its default: cobra keeps flag values
// between Execute calls in one process.
func resetFlags(c *cobra.Command) {
	c.Flags().VisitAll(func(f *pflag.Flag) {
		// Set on a slice flag appends, so slices are replaced whole.
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			var def []string
			if d := strings.Trim(f.DefValue, "[]"); d != "" {
				def = strings.Split(d, ",")
			}
			sv.Replace(def)
			f.Changed = false
			return
		}
		f.Value.Set(f.DefValue)
		f.Changed = false
	})
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
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

// realPEFTDir finds shared/cases/peft-gpt2-lora next to the repository
// root (or one directory further up, for a worktree checkout).
func realPEFTDir(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"../../../shared/cases/peft-gpt2-lora", "../../../../shared/cases/peft-gpt2-lora"} {
		if _, err := os.Stat(filepath.Join(dir, "adapter_model.safetensors")); err == nil {
			return dir
		}
	}
	t.Skip("real PEFT adapter not present")
	return ""
}

func TestInspectRealPEFT(t *testing.T) {
	dir := realPEFTDir(t)
	code, out := runCLI(t, "inspect", dir)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"group all: 25 tensors, 12 LoRA modules, 299520 parameters",
		"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight   [8×768]   F32    7.75175",
		"base_model.model.transformer.h.9.attn.c_attn                 8",
		"totals: 1 groups, 25 tensors, 12 LoRA modules, 299520 parameters, 1198080 tensor bytes",
	} {
		if !strings.Contains(flat(out), flat(want)) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	code, out = runCLI(t, "inspect", "--json", dir)
	if code != exitOK || !strings.Contains(out, `"totals":{"tensors":25,"modules":12,"params":299520,"bytes":1198080,"file_bytes":1201208}`) {
		t.Errorf("--json: exit %d, %s", code, out)
	}
}

func TestInspectHalfPrecisionAndHostileFiles(t *testing.T) {
	dir := t.TempDir()
	// Header then F16 [1, 2] = {3, 4} and BF16 [2] = {1, -1}.
	header := `{"__metadata__":{"daf.format":"talora-update/1","daf.node":"n9"},"coarse/m.lora_A.weight":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]},"domain/m.lora_A.weight":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]}}`
	file := append([]byte{byte(len(header)), 0, 0, 0, 0, 0, 0, 0}, header...)
	file = append(file, 0x00, 0x42, 0x00, 0x44, 0x80, 0x3f, 0x80, 0xbf)
	good := filepath.Join(dir, "half.safetensors")
	os.WriteFile(good, file, 0o644)
	code, out := runCLI(t, "inspect", good)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"group coarse t∈[700, 1000): 1 tensors", "m.lora_A.weight  [1×2]  F16    5", "m.lora_A.weight  [1×2]  BF16   1.41421", "daf.node            n9"} {
		if !strings.Contains(flat(out), flat(want)) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	// The same file with the BF16 tensor's offsets running past the data.
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte(strings.Replace(string(file), "[4,8]", "[4,9]", 1)), 0o644)
	if code, _ := runCLI(t, "inspect", bad); code != exitInput {
		t.Errorf("hostile file: exit %d, want %d", code, exitInput)
	}
	if code, _ := runCLI(t, "inspect", filepath.Join(dir, "missing")); code != exitInput {
		t.Errorf("missing file: exit %d, want %d", code, exitInput)
	}
}

// flat collapses runs of blanks so checks do not depend on column widths.
func flat(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// A command that only groups subcommands must not take an unknown one for
// a request for help: that would exit 0 on a typo in a script.
func TestUnknownSubcommandIsUsageError(t *testing.T) {
	for _, group := range []string{"config", "privacy"} {
		if code, _ := runCLI(t, group, "chek", "x"); code != exitInput {
			t.Errorf("daf %s chek: exit %d, want %d", group, code, exitInput)
		}
		if code, out := runCLI(t, group); code != exitOK || !strings.Contains(out, "Available Commands") {
			t.Errorf("daf %s: exit %d, output %q; want the help and exit 0", group, code, out)
		}
	}
}

// Every command answers --help with exit 0 and its usage.
func TestHelpOnEveryCommand(t *testing.T) {
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		if code, out := runCLI(t, args...); code != exitOK || !strings.Contains(out, "Usage:") {
			t.Errorf("daf %s: exit %d, output %q", strings.Join(args, " "), code, out)
		}
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(rootCmd)
}

// Names and metadata come from the file: a tensor named with a newline or
// a node id carrying a terminal escape must not break the table or reach
// the terminal raw.
func TestInspectQuotesControlCharacters(t *testing.T) {
	header := `{"__metadata__":{"daf.format":"talora-update/1","daf.node":"n\u001b[2J","note\nx":"v\ty"},"fine/a\nb.lora_A.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}`
	file := append([]byte{byte(len(header)), 0, 0, 0, 0, 0, 0, 0}, header...)
	file = append(file, 0, 0, 0x80, 0x3f)
	path := filepath.Join(t.TempDir(), "ctl.safetensors")
	os.WriteFile(path, file, 0o644)
	code, out := runCLI(t, "inspect", path)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("raw escape in output:\n%q", out)
	}
	for _, want := range []string{`"a\nb.lora_A.weight"`, `"n\x1b[2J"`, `"note\nx"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, out)
		}
	}
}
