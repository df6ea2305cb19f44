package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestStageBackPressureAndDrops(t *testing.T) {
	m := NewMetrics()
	s := newStage("open", 1, 2, m)
	release := make(chan struct{})
	var ran atomic.Int32
	block := func() { <-release; ran.Add(1) }
	// One job occupies the worker, two fill the queue.
	for range 3 {
		if err := s.Submit(context.Background(), block); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return len(s.jobs) == 2 })
	if err := s.TrySubmit(block); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("TrySubmit on a full queue: err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Submit(ctx, block); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full queue: err = %v, want to wait until the deadline", err)
	}
	if got := metricValue(t, m, "daf_pipeline_dropped_total", "stage", "open"); got != 1 {
		t.Fatalf("dropped = %v, want 1", got)
	}
	close(release)
	s.Close()
	if ran.Load() != 3 {
		t.Fatalf("%d jobs ran, want 3", ran.Load())
	}
	if err := s.TrySubmit(block); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("after Close: err = %v", err)
	}
}

func TestStageRunsWorkersInParallel(t *testing.T) {
	s := newStage("seal", 4, 8, nil)
	var inFlight, peak atomic.Int32
	for range 8 {
		_ = s.Submit(context.Background(), func() {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			inFlight.Add(-1)
		})
	}
	s.Close()
	if peak.Load() < 2 {
		t.Fatalf("peak concurrency %d, want ≥ 2 with 4 workers", peak.Load())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
