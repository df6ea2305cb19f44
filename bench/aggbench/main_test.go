package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// The bench must time real files: gen writes readable updates with the
// sample counts the weighted average uses, and kernels runs over them.
func TestGenThenKernels(t *testing.T) {
	dir := t.TempDir()
	if err := gen([]string{"-n", "3", "-p", "1000", "-dir", dir}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if len(files) != 3 {
		t.Fatalf("gen wrote %d files, want 3", len(files))
	}
	u, err := adapter.ReadFile(files[2])
	if err != nil {
		t.Fatal(err)
	}
	if u.Meta.Samples != 3 || len(u.Get("fine", "layer.weight").Data) != 1000 {
		t.Fatalf("n02: samples %v, %d values", u.Meta.Samples, len(u.Get("fine", "layer.weight").Data))
	}
	stdout := os.Stdout
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	os.Stdout = devnull
	err = kernels([]string{"-dir", dir, "-reps", "1"})
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	if err := kernels([]string{"-dir", t.TempDir()}); err == nil {
		t.Fatal("kernels over an empty directory succeeded")
	}
}
