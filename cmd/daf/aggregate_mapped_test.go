package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/aggregate"
)

// writeLoRAUpdate writes an update of kind kind with two LoRA modules of
// rank 2 and a plain tensor in groups coarse and fine, random values, and
// quality metrics so that every strategy has what it needs.
func writeLoRAUpdate(t *testing.T, dir, node string, kind adapter.Kind, rng *rand.Rand) string {
	t.Helper()
	u := adapter.New()
	u.Meta.Node, u.Meta.Kind, u.Meta.Samples = node, kind, float64(1+rng.IntN(9))
	u.Meta.Quality = map[string]adapter.GroupQuality{}
	for _, g := range []string{"coarse", "fine"} {
		u.Meta.Quality[g] = adapter.GroupQuality{PPLBefore: 10, PPLAfter: 9 + rng.Float64(), TaskAccuracy: map[string]float64{"qa": rng.Float64()}}
		for _, m := range []string{"layers.0.q_proj", "layers.0.v_proj"} {
			a, b := adapter.NewTensor(2, 6), adapter.NewTensor(5, 2)
			for _, x := range []*adapter.Tensor{a, b} {
				for i := range x.Data {
					x.Data[i] = float32(rng.NormFloat64())
				}
			}
			u.Set(g, m+".lora_A.weight", a)
			u.Set(g, m+".lora_B.weight", b)
		}
		head := adapter.NewTensor(3)
		for i := range head.Data {
			head.Data[i] = float32(rng.NormFloat64())
		}
		u.Set(g, "score.weight", head)
	}
	path := filepath.Join(dir, node+".safetensors")
	if err := adapter.WriteFile(path, u); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyingReader is the reader daf aggregate used before it mapped files.
func copyingReader(path string) (*adapter.Update, *adapter.Mapping, error) {
	u, err := adapter.ReadFile(path)
	return u, nil, err
}

// Every strategy in every LoRA mode, and with --base, aggregates mapped
// inputs to the very bytes it aggregates copies to. The mapped inputs are
// read-only pages, so this also proves that no path of the aggregator
// writes to its inputs: a write would be a fatal fault, ending the test.
func TestAggregateMappedInputsMatchCopiedInputs(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	var adapters, deltas []string
	for i := range 5 {
		adapters = append(adapters, writeLoRAUpdate(t, dir, fmt.Sprintf("a%d", i), adapter.KindAdapter, rng))
		deltas = append(deltas, writeLoRAUpdate(t, dir, fmt.Sprintf("d%d", i), adapter.KindDelta, rng))
	}
	base := writeLoRAUpdate(t, dir, "base", adapter.KindAdapter, rng)
	before := map[string][]byte{}
	for _, p := range append(append(append([]string(nil), adapters...), deltas...), base) {
		before[p], _ = os.ReadFile(p)
	}

	run := func(reader func(string) (*adapter.Update, *adapter.Mapping, error), out string, args []string) []byte {
		t.Helper()
		readInput = reader
		defer func() { readInput = adapter.ReadFileMapped }()
		full := append([]string{"aggregate", "-o", out}, args...)
		if code, stdout := runCLI(t, full...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", full, code, stdout)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var cases [][]string
	for _, s := range append(aggregate.Strategies(), aggregate.EngineStrategy) {
		for _, mode := range []string{"factor", "exact", "svd"} {
			cases = append(cases, append([]string{"--strategy", s, "--lora-mode", mode}, adapters...))
		}
		cases = append(cases, append([]string{"--strategy", s, "--lora-mode", "exact", "--base", base}, deltas...))
		cases = append(cases, append([]string{"--strategy", s}, deltas...))
	}
	for _, args := range cases {
		mapped := run(adapter.ReadFileMapped, filepath.Join(dir, "mapped.out"), args)
		copied := run(copyingReader, filepath.Join(dir, "copied.out"), args)
		if !bytes.Equal(mapped, copied) {
			t.Errorf("%v: mapped and copied inputs give different aggregates", args[:4])
		}
	}
	for p, b := range before {
		if now, _ := os.ReadFile(p); !bytes.Equal(now, b) {
			t.Errorf("input %s changed", p)
		}
	}
}

// A NaN in a large mapped input (checked on every core) stops the command
// with exit 2 and one line naming the file, the tensor and the index.
func TestAggregateNaNInMappedInputNamesFileAndTensor(t *testing.T) {
	dir := t.TempDir()
	good := make([]float32, 1<<20)
	for i := range good {
		good[i] = float32(i % 100)
	}
	a := writeUpdate(t, dir, "a", 1, good...)
	// Writers refuse a NaN, so the value is patched into a written file.
	b := writeUpdate(t, dir, "b", 1, good...)
	raw, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	at := len(raw) - 4*len(good) + 4*777777
	binary.LittleEndian.PutUint32(raw[at:], math.Float32bits(float32(math.Inf(-1))))
	if err := os.WriteFile(b, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runCLIStderr(t, "aggregate", "--strategy", "median", "-o", filepath.Join(dir, "o.safetensors"), a, b)
	want := b + `: tensor "fine/m.weight": non-finite value at index 777777: -Inf`
	if code != exitInput || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "o.safetensors")); !os.IsNotExist(err) {
		t.Error("an output was written")
	}
}

// The output may replace one of the inputs: the input stays mapped while
// the output is written beside it and renamed over it, so the result is
// the same as into a new file.
func TestAggregateOutputOverAnInput(t *testing.T) {
	dir := t.TempDir()
	a := writeUpdate(t, dir, "a", 1, 1, 2, 3)
	b := writeUpdate(t, dir, "b", 3, 5, 6, 7)
	fresh := filepath.Join(dir, "fresh.safetensors")
	if code, out := runCLI(t, "aggregate", "--strategy", "weighted_average", "-o", fresh, a, b); code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	if code, out := runCLI(t, "aggregate", "--strategy", "weighted_average", "-o", a, a, b); code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	want, _ := os.ReadFile(fresh)
	if got, _ := os.ReadFile(a); !bytes.Equal(got, want) {
		t.Fatal("aggregating over an input gave a different file")
	}
}

// A mapped input that shrinks after it was read but before the aggregator
// reaches its values must not kill the process with SIGBUS: the command
// stops with exit 2 naming the file, for every strategy, whether the
// values are read on the calling goroutine (one span) or by workers.
func TestAggregateInputTruncatedAfterReadingIsAnError(t *testing.T) {
	if !adapterMaps(t) {
		t.Skip("files are not mapped on this platform")
	}
	for _, n := range []int{5, 1 << 20} {
		for _, strategy := range append(aggregate.Strategies(), aggregate.EngineStrategy) {
			t.Run(fmt.Sprintf("%s/%d", strategy, n), func(t *testing.T) {
				dir := t.TempDir()
				var inputs []string
				for i := 0; i < 5; i++ {
					vals := make([]float32, n)
					for j := range vals {
						vals[j] = float32((i*7 + j) % 13)
					}
					inputs = append(inputs, writeUpdate(t, dir, fmt.Sprintf("n%d", i), float64(1+i), vals...))
				}
				victim := inputs[2]
				readInput = func(path string) (*adapter.Update, *adapter.Mapping, error) {
					u, m, err := adapter.ReadFileMapped(path)
					if err == nil && path == victim {
						if err := os.Truncate(path, 0); err != nil {
							t.Error(err)
						}
					}
					return u, m, err
				}
				defer func() { readInput = adapter.ReadFileMapped }()
				out := filepath.Join(dir, "o.safetensors")
				code, stderr := runCLIStderr(t, "aggregate", "--strategy", strategy, "-o", out, inputs[0], inputs[1], inputs[2], inputs[3], inputs[4])
				if code != exitInput || !strings.Contains(stderr, victim) || !strings.Contains(stderr, "shrank") {
					t.Fatalf("exit %d, stderr %q; want exit 2 naming %s", code, stderr, victim)
				}
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Error("an output was written")
				}
			})
		}
	}
}

// A --base truncated after it was read faults where it is added to the
// deltas, on the reading goroutines: that too is exit 2 naming the base.
func TestAggregateBaseTruncatedAfterReadingIsAnError(t *testing.T) {
	if !adapterMaps(t) {
		t.Skip("files are not mapped on this platform")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 5))
	var deltas []string
	for i := range 3 {
		deltas = append(deltas, writeLoRAUpdate(t, dir, fmt.Sprintf("d%d", i), adapter.KindDelta, rng))
	}
	base := writeLoRAUpdate(t, dir, "base", adapter.KindAdapter, rng)
	readInput = func(path string) (*adapter.Update, *adapter.Mapping, error) {
		u, m, err := adapter.ReadFileMapped(path)
		if err == nil && path == base {
			if err := os.Truncate(path, 0); err != nil {
				t.Error(err)
			}
		}
		return u, m, err
	}
	defer func() { readInput = adapter.ReadFileMapped }()
	args := append([]string{"aggregate", "--strategy", "weighted_average", "--lora-mode", "exact", "--base", base, "-o", filepath.Join(dir, "o.safetensors")}, deltas...)
	code, stderr := runCLIStderr(t, args...)
	if code != exitInput || !strings.Contains(stderr, base) || !strings.Contains(stderr, "shrank") {
		t.Fatalf("exit %d, stderr %q; want exit 2 naming %s", code, stderr, base)
	}
}

// adapterMaps reports whether ReadFileMapped really maps files here.
func adapterMaps(t *testing.T) bool {
	p := writeUpdate(t, t.TempDir(), "probe", 1, 1, 2, 3)
	_, m, err := adapter.ReadFileMapped(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Mapped()
}
