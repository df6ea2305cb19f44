package adapter

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// bigUpdateFile writes an update of two tensors of n values each.
func bigUpdateFile(t *testing.T, n int) string {
	t.Helper()
	u := New()
	for _, k := range []string{"a", "b"} {
		x := NewTensor(n)
		for i := range x.Data {
			x.Data[i] = float32(i%977) / 13
		}
		u.Set("fine", k, x)
	}
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := WriteFile(path, u); err != nil {
		t.Fatal(err)
	}
	return path
}

// A file truncated in place after it was mapped, before or while its
// header and values are read, is an ErrCorrupt error naming the file, not
// a SIGBUS: the header is read, and the values checked on every core,
// under a guard that turns a fault on the mapping into an error.
func TestMappedFileShrinkingUnderTheReaderIsAnError(t *testing.T) {
	page := int64(os.Getpagesize())
	for _, keep := range []int64{0, 64, page, 3 << 20} {
		path := bigUpdateFile(t, 2*finiteChunk) // 2 × 2 MiB of values
		m, err := openMapping(path)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Mapped() {
			t.Fatal("a regular file was not mapped")
		}
		if err := os.Truncate(path, keep); err != nil {
			t.Fatal(err)
		}
		_, err = m.decode()
		m.Close()
		if !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), path+": ") {
			t.Fatalf("file cut to %d bytes under the mapping: got %v", keep, err)
		}
		// Within the last page the kernel shows zeros past the end, which
		// spoil the header; past it, the guard catches the fault.
		if (keep == 0 || keep >= page) && !strings.Contains(err.Error(), "shrank") {
			t.Fatalf("file cut to %d bytes under the mapping: got %v, want the fault reported", keep, err)
		}
	}
}

// The mapped tensors really are read-only: a write is a fatal fault, never
// a silent change of the caller's file. (Run in a child process, since the
// fault ends it.)
func TestMappedTensorsAreReadOnly(t *testing.T) {
	if path := os.Getenv("DAF_TEST_WRITE_MAPPED"); path != "" {
		u, _, err := ReadFileMapped(path)
		if err != nil {
			t.Fatal(err)
		}
		u.Get("fine", "a").Data[1] = 42
		t.Fatal("wrote to a mapped tensor")
	}
	path := bigUpdateFile(t, 1024)
	before, _ := os.ReadFile(path)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMappedTensorsAreReadOnly$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DAF_TEST_WRITE_MAPPED="+path)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unexpected fault address") {
		t.Fatalf("writing to a mapped tensor: err %v, output:\n%s", err, out)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("the file changed")
	}
}

// A FIFO is refused at once, not opened (which would block until a writer
// came).
func TestMappedReaderRefusesAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := ReadFileMapped(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFileMapped blocked on a FIFO")
	}
}

// A fault is attributed to a mapping only if it lies in that mapping's
// pages: small files mapped next to each other must not claim each other's
// faults (the guard over many inputs would name the wrong file).
func TestMappingContainsNotTheNextPage(t *testing.T) {
	page := os.Getpagesize()
	_, m, err := ReadFileMapped(bigUpdateFile(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Mapped() {
		t.Skip("not mapped")
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	if !m.contains(base) || !m.contains(base+uintptr(len(m.data))-1) {
		t.Fatal("the mapping does not contain its own bytes")
	}
	if m.contains(base + uintptr(page)) {
		t.Fatalf("a %d-byte mapping claims the page after it", len(m.data))
	}
}
