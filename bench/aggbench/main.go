// Command aggbench is the Go side of bench/aggregate: it writes the update
// files both sides read, and times the aggregation kernels next to a plain
// parallel memory copy on the same data, in one process.
//
//	aggbench gen -n N -p P -dir DIR          write N update files of P float32
//	aggbench kernels -dir DIR [-reps R]      time a copy of the inputs, weighted average,
//	                                         trimmed mean (β = 0.2), median
//
// kernels prints one JSON object per line: {"op", "n", "p", "seconds",
// "bytes"}, seconds being the best of R repetitions and bytes what the
// operation must move at least: (N+1)·P·4 for a kernel; 2·N·P·4 for the
// copy, which copies every input once so that, like the kernels, it streams
// N·P values from memory rather than from cache.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/aggregate"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: aggbench gen|kernels [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "kernels":
		err = kernels(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (want gen or kernels)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "aggbench:", err)
		os.Exit(1)
	}
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	n := fs.Int("n", 5, "number of updates")
	p := fs.Int("p", 1<<20, "float32 parameters per update")
	dir := fs.String("dir", "", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	for i := 0; i < *n; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), uint64(*p)))
		t := adapter.NewTensor(*p)
		for j := range t.Data {
			t.Data[j] = float32(rng.NormFloat64())
		}
		u := adapter.New()
		u.Meta.Node = fmt.Sprintf("n%02d", i)
		u.Meta.Samples = float64(1 + i%7)
		u.Set("fine", "layer.weight", t)
		if err := adapter.WriteFile(filepath.Join(*dir, u.Meta.Node+".safetensors"), u); err != nil {
			return err
		}
	}
	return nil
}

type timing struct {
	Op      string  `json:"op"`
	N       int     `json:"n"`
	P       int     `json:"p"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
}

func kernels(args []string) error {
	fs := flag.NewFlagSet("kernels", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory written by gen")
	reps := fs.Int("reps", 5, "repetitions (the best is reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(*dir, "*.safetensors"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no update files in %s", *dir)
	}
	sort.Strings(files)
	var xs [][]float32
	var w []float32
	var total float32
	for _, f := range files {
		u, err := adapter.ReadFile(f)
		if err != nil {
			return err
		}
		xs = append(xs, u.Get("fine", "layer.weight").Data)
		w = append(w, float32(u.Meta.Samples))
		total += float32(u.Meta.Samples)
	}
	for i := range w {
		w[i] /= total
	}
	n, p := len(xs), len(xs[0])
	dst := make([]float32, p)
	copyDst := make([]float32, n*p)
	workers := runtime.GOMAXPROCS(0)
	k := int(0.2*float64(n) + 1e-9)
	ops := []struct {
		name  string
		bytes int64
		run   func() error
	}{
		{"copy", int64(2 * 4 * p * n), func() error {
			for i, x := range xs {
				parallelCopy(copyDst[i*p:(i+1)*p], x, workers)
			}
			return nil
		}},
		{"weighted_average", int64(4 * p * (n + 1)), func() error { return aggregate.WeightedSumInto(dst, xs, w, workers) }},
		{"trimmed_mean", int64(4 * p * (n + 1)), func() error { return aggregate.TrimmedMeanInto(dst, xs, k, workers) }},
		{"median", int64(4 * p * (n + 1)), func() error { return aggregate.MedianInto(dst, xs, workers) }},
	}
	enc := json.NewEncoder(os.Stdout)
	for _, op := range ops {
		best := 0.0
		for r := 0; r < *reps; r++ {
			start := time.Now()
			if err := op.run(); err != nil {
				return err
			}
			if s := time.Since(start).Seconds(); r == 0 || s < best {
				best = s
			}
		}
		if err := enc.Encode(timing{op.name, n, p, best, op.bytes}); err != nil {
			return err
		}
	}
	return nil
}

// parallelCopy is the bandwidth anchor: copy split in contiguous halves
// over the same number of goroutines the kernels use.
func parallelCopy(dst, src []float32, workers int) {
	var wg sync.WaitGroup
	chunk := (len(src) + workers - 1) / workers
	for lo := 0; lo < len(src); lo += chunk {
		hi := min(lo+chunk, len(src))
		wg.Add(1)
		go func() {
			defer wg.Done()
			copy(dst[lo:hi], src[lo:hi])
		}()
	}
	wg.Wait()
}
