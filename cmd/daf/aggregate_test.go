package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// writeUpdate writes a one-group update with tensor "w" = v.
func writeUpdate(t *testing.T, dir, node string, samples float64, v ...float32) string {
	t.Helper()
	u := adapter.New()
	u.Meta.Node, u.Meta.Samples = node, samples
	u.Set("fine", "m.weight", &adapter.Tensor{Shape: []int{len(v)}, Data: v})
	path := filepath.Join(dir, node+".safetensors")
	if err := adapter.WriteFile(path, u); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAggregateCommand(t *testing.T) {
	dir := t.TempDir()
	a := writeUpdate(t, dir, "a", 1, 0.5, 10)
	b := writeUpdate(t, dir, "b", 2, 1, 20)
	c := writeUpdate(t, dir, "c", 1, 2, 30)
	d := writeUpdate(t, dir, "d", 1, 100, 40)
	out := filepath.Join(dir, "agg.safetensors")
	code, stdout := runCLI(t, "aggregate", "--strategy", "trimmed_mean", "--trim-fraction", "0.25", "-o", out, a, b, c, d, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stdout)
	}
	var s aggregateSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	if s.Strategy != "trimmed_mean" || s.Contributors["fine"] != 4 || s.Samples != 5 || strings.Join(s.Nodes, ",") != "a,b,c,d" {
		t.Fatalf("summary %+v", s)
	}
	got, err := adapter.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Get("fine", "m.weight").Data; v[0] != 1.5 || v[1] != 25 {
		t.Fatalf("trimmed mean 0.25 = %v, want [1.5 25]", v)
	}
	if got.Meta.Extra["daf.strategy"] != "trimmed_mean" || got.Meta.Extra["daf.group_contributors"] != `{"fine":4}` {
		t.Fatalf("metadata %v", got.Meta.Extra)
	}

	// An aggregate (daf.node empty) fed back in is named by its file, as a
	// file without daf.node is.
	again := filepath.Join(dir, "again.safetensors")
	code, stdout = runCLI(t, "aggregate", "--strategy", "median", "-o", again, out, a, "--json")
	if err := json.Unmarshal([]byte(stdout), &s); code != exitOK || err != nil || strings.Join(s.Nodes, ",") != "agg,a" {
		t.Fatalf("re-aggregating the output: exit %d, nodes %v (%v)", code, s.Nodes, err)
	}

	code, _ = runCLI(t, "aggregate", "--strategy", "weighted_average", "-o", out, a, b, c)
	if got, _ = adapter.ReadFile(out); code != exitOK || got.Get("fine", "m.weight").Data[0] != (0.5+2+2)/4 {
		t.Fatalf("weighted_average: exit %d, %v", code, got.Get("fine", "m.weight").Data)
	}
}

// The automatic krum f follows the updates a group keeps: with
// max_nodes_per_round = 3 of 7 files, krum runs with f = 0.
func TestAggregateCommandKrumAfterMaxNodes(t *testing.T) {
	dir := t.TempDir()
	toml, err := os.ReadFile("../../federation.toml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(strings.Replace(string(toml), "max_nodes_per_round = 50", "max_nodes_per_round = 3", 1),
		`fine_strategy = "trimmed_mean"`, `fine_strategy = "krum"`, 1)
	cfg := filepath.Join(dir, "federation.toml")
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var ins []string
	for i := 0; i < 7; i++ {
		ins = append(ins, writeUpdate(t, dir, string(rune('a'+i)), 1, float32(i)))
	}
	args := append([]string{"aggregate", "--strategy", "daf", "--config", cfg, "-o", filepath.Join(dir, "o.safetensors")}, ins...)
	if code, out := runCLI(t, args...); code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestAggregateCommandErrors(t *testing.T) {
	dir := t.TempDir()
	a := writeUpdate(t, dir, "a", 0, 1)
	b := writeUpdate(t, dir, "b", 0, 2)
	out := filepath.Join(dir, "o.safetensors")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--strategy", "weighted_average", "-o", out, a, b}, "sum to 0"},
		{[]string{"-o", out, a}, "--strategy is required"},
		{[]string{"--strategy", "fedavg", "-o", out, a}, `--strategy "fedavg"`},
		{[]string{"--strategy", "median", a}, "-o/--output"},
		{[]string{"--strategy", "median", "--lora-mode", "dense", "-o", out, a}, "--lora-mode"},
		{[]string{"--strategy", "median", "--lora-mode", "exact", "-o", out, a, b}, "daf.kind=delta"},
		{[]string{"--strategy", "daf", "-o", out, a, b}, "min_nodes_for_aggregation is 3"},
		{[]string{"--strategy", "median", "-o", out, filepath.Join(dir, "missing.safetensors")}, "missing.safetensors"},
		{[]string{"--strategy", "median", "--config", filepath.Join(dir, "none.toml"), "-o", out, a}, "--config"},
		{[]string{"--strategy", "quality_weighted", "--temperature", "inf", "-o", out, a, b}, "--temperature"},
		{[]string{"--strategy", "median", "-o", out}, "IN.safetensors"},
		{[]string{"--strategy", "median", "--trim-fraction", "0.5", "-o", out, a, b}, "--trim-fraction"},
		{[]string{"--strategy", "krum", "--krum-f", "1", "-o", out, a, b}, "n > 2f+2"},
	}
	for _, c := range cases {
		var stderr string
		code := func() int {
			r, w, _ := os.Pipe()
			old := os.Stderr
			os.Stderr = w
			code, _ := runCLI(t, append([]string{"aggregate"}, c.args...)...)
			w.Close()
			os.Stderr = old
			buf := make([]byte, 4096)
			n, _ := r.Read(buf)
			stderr = string(buf[:n])
			return code
		}()
		if code != exitInput || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}

	// A NaN in an input is rejected naming the file and the tensor.
	header := `{"__metadata__":{"daf.format":"talora-update/1"},"fine/m.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	raw := append([]byte{byte(len(header)), 0, 0, 0, 0, 0, 0, 0}, header...)
	nan := math.Float32bits(float32(math.NaN()))
	raw = append(raw, byte(nan), byte(nan>>8), byte(nan>>16), byte(nan>>24))
	bad := filepath.Join(dir, "nan.safetensors")
	os.WriteFile(bad, raw, 0o644)
	if code, _ := runCLI(t, "aggregate", "--strategy", "median", "-o", out, a, bad); code != exitInput {
		t.Errorf("NaN input: exit %d, want 2", code)
	}
}

// The real PEFT adapter aggregated with itself through the command in svd
// mode is the same adapter: same rank, alpha, layout and factors' product.
func TestAggregateCommandRealPEFT(t *testing.T) {
	src := realPEFTDir(t)
	out := filepath.Join(t.TempDir(), "self.safetensors")
	code, stdout := runCLI(t, "aggregate", "--strategy", "geometric_median", "--lora-mode", "svd", "-o", out, src, src, "--json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var s aggregateSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Rank != 8 || s.LoraAlpha != 8 || !s.FanInFanOut || s.SVDRelError == nil || *s.SVDRelError > 1e-5 || s.Params != 299520 {
		t.Fatalf("summary %+v", s)
	}
}
