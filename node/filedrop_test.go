package node

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dafnet/daf/adapter"
)

func TestFileDropRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f, err := NewFileDropTrainer(dir, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	current := NewPullTrainer(0.1, 2, 3, 2, 1).Target
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type result struct {
		u   *adapter.Update
		err error
	}
	done := make(chan result, 1)
	go func() { u, err := f.Train(ctx, 42, current); done <- result{u, err} }()

	// The external trainer's side: wait for the ticket, read the adapter,
	// drop a stale file and then the real update.
	ticketPath := filepath.Join(dir, "outbox", "round-42.json")
	waitCond(t, "ticket", 5*time.Second, func() bool { _, err := os.Stat(ticketPath); return err == nil })
	var tk Ticket
	b, _ := os.ReadFile(ticketPath)
	if err := json.Unmarshal(b, &tk); err != nil || tk.Round != 42 || tk.Adapter != "round-42.safetensors" || tk.Deadline.IsZero() {
		t.Fatalf("ticket %s: %+v %v", b, tk, err)
	}
	got, err := adapter.ReadFile(filepath.Join(dir, "outbox", tk.Adapter))
	if err != nil || Distance(current, got) != 0 || got.Meta.Kind != adapter.KindAdapter {
		t.Fatalf("outbox adapter: %v (kind %q)", err, got.Meta.Kind)
	}
	stale := current.Clone()
	stale.Meta.Round = 41
	if err := adapter.WriteFile(filepath.Join(dir, "inbox", "a-stale.safetensors"), stale); err != nil {
		t.Fatal(err)
	}
	upd := current.Clone()
	upd.Meta.Round, upd.Meta.Samples = 42, 128
	if err := adapter.WriteFile(filepath.Join(dir, "inbox", "b-update.safetensors"), upd); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.u.Meta.Samples != 128 || r.u.Meta.Round != 42 {
		t.Fatalf("Train = %+v, %v", r.u, r.err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inbox", "rejected", "a-stale.safetensors.txt")); err != nil {
		t.Errorf("stale file not rejected with a reason: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inbox", "done", "b-update.safetensors")); err != nil {
		t.Errorf("update not moved to done/: %v", err)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := f.Train(short, 43, nil); !errors.Is(err, ErrNoUpdate) {
		t.Fatalf("no file before the deadline: err = %v, want ErrNoUpdate", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inbox", "metrics.json"), []byte(`{"loss": 1.25}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := f.Evaluate(context.Background(), nil); err != nil || m["loss"] != 1.25 {
		t.Fatalf("Evaluate = %v, %v", m, err)
	}
}
