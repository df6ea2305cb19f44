package node

import (
	"maps"
	"sync"

	"github.com/dafnet/daf/defense"
)

// statsCache is the detector's StatsStore in the daemon: reads fall through
// to state.db once per node, writes stay in memory and are committed with
// the round loop's next batch. The detector saves after every accepted
// update, on the loop's goroutine; an fsync each time would stall the
// round. A crash loses at most the statistics of the updates since the
// last batch, which only makes the detector a little less informed.
type statsCache struct {
	store *Store
	mu    sync.Mutex
	cache map[string]defense.NodeStats
	dirty map[string]bool
}

func newStatsCache(s *Store) *statsCache {
	return &statsCache{store: s, cache: map[string]defense.NodeStats{}, dirty: map[string]bool{}}
}

func (c *statsCache) LoadStats(node string) (defense.NodeStats, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.cache[node]; ok {
		return st.Clone(), true, nil
	}
	st, ok, err := c.store.LoadStats(node)
	if err == nil && ok {
		c.cache[node] = st.Clone()
	}
	return st, ok, err
}

func (c *statsCache) SaveStats(node string, st defense.NodeStats) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cache[node] = st.Clone()
	c.dirty[node] = true
	return nil
}

// drain moves the unsaved statistics into a batch.
func (c *statsCache) drain(b *Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) == 0 {
		return
	}
	if b.Stats == nil {
		b.Stats = map[string]defense.NodeStats{}
	}
	for node := range c.dirty {
		b.Stats[node] = c.cache[node].Clone()
	}
	maps.DeleteFunc(c.dirty, func(string, bool) bool { return true })
}
