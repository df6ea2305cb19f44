package node

import (
	"context"
	"errors"
	"sync"
)

// ErrQueueFull is returned by TrySubmit when a stage's queue is full: the
// item is dropped (and counted), never silently queued without bound.
var ErrQueueFull = errors.New("pipeline stage queue full")

// ErrQueueClosed is returned once a stage has been closed.
var ErrQueueClosed = errors.New("pipeline stage closed")

// stage is one step of the async pipeline: a bounded queue of jobs served
// by a fixed number of workers. Submit blocks while the queue is full
// (back-pressure towards our own producers); TrySubmit drops instead (the
// policy for work that arrives from the network, whose sender is told it
// was refused and may retry elsewhere). Drops and queue lengths go to the
// metrics under the stage's name.
type stage struct {
	name    string
	jobs    chan func()
	metrics *Metrics

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

func newStage(name string, workers, depth int, m *Metrics) *stage {
	s := &stage{name: name, jobs: make(chan func(), depth), metrics: m}
	for range max(1, workers) {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

func (s *stage) work() {
	defer s.wg.Done()
	for job := range s.jobs {
		s.gauge()
		job()
	}
}

func (s *stage) gauge() {
	if s.metrics != nil {
		s.metrics.PipelineQueueLen.WithLabelValues(s.name).Set(float64(len(s.jobs)))
	}
}

// Submit queues job, waiting while the queue is full.
func (s *stage) Submit(ctx context.Context, job func()) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrQueueClosed
	}
	select {
	case s.jobs <- job:
		s.gauge()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TrySubmit queues job if there is room and otherwise drops it.
func (s *stage) TrySubmit(job func()) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrQueueClosed
	}
	select {
	case s.jobs <- job:
		s.gauge()
		return nil
	default:
		if s.metrics != nil {
			s.metrics.PipelineDropped.WithLabelValues(s.name).Inc()
		}
		return ErrQueueFull
	}
}

// Close stops accepting jobs, runs those already queued and waits for the
// workers.
func (s *stage) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.jobs)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
