package defense

import (
	"math"
	"sync"
)

// A value's sketch bucket and sign depend only on its tensor's name and
// its index, never on the value, so they are the same for every update of
// a model. Hashing them anew for each value was most of Validate's cost
// (the hash is several multiplications; a table entry is two bytes read in
// order), so each tensor's buckets and signs are kept in a table, shared by
// every detector of the process. Tensor names come from the network: the
// tables together hold at most maxCachedEntries values, and the whole
// cache is dropped when a new table would not fit, so names nobody sends
// again cannot pin the memory, and a flood of made-up names costs only
// the speed the tables would have saved.

const (
	// maxCachedEntries bounds the tables' total size (2 bytes a value:
	// 32 MiB), about sixteen 1 M-value models.
	maxCachedEntries = 1 << 24
	// minCachedTable: smaller tensors are hashed directly, a table would
	// save less than its lookup costs.
	minCachedTable = 1024
)

// A table entry is the bucket in its low bits and the sign in bit 15.
const (
	entryBucketMask = SketchDims - 1
	entrySignShift  = 15
)

type sketchTableKey struct {
	group, key string
	n          int
}

type sketchTableCache struct {
	maxEntries int
	mu         sync.Mutex
	tables     map[sketchTableKey][]uint16
	entries    int
}

var sketchTables = newSketchTableCache(maxCachedEntries)

func newSketchTableCache(maxEntries int) *sketchTableCache {
	return &sketchTableCache{maxEntries: maxEntries, tables: map[sketchTableKey][]uint16{}}
}

// get returns the table of tensor group/key with n values, making it if
// needed. Tables are never written once made.
func (c *sketchTableCache) get(group, key string, n int) []uint16 {
	k := sketchTableKey{group, key, n}
	c.mu.Lock()
	t, ok := c.tables[k]
	c.mu.Unlock()
	if ok {
		return t
	}
	t = makeSketchTable(tensorSeed(group, key), n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if held, ok := c.tables[k]; ok {
		return held // made meanwhile by another caller
	}
	if c.entries+n > c.maxEntries {
		clear(c.tables)
		c.entries = 0
	}
	if n <= c.maxEntries {
		c.tables[k] = t
		c.entries += n
	}
	return t
}

func makeSketchTable(seed uint64, n int) []uint16 {
	t := make([]uint16, n)
	for i := range t {
		r := splitmix64(seed + uint64(i)*0x9e3779b97f4a7c15)
		t[i] = uint16(r%SketchDims) | uint16(r>>63)<<entrySignShift
	}
	return t
}

// sketchByTable is sketchTensor with each value's bucket and sign read
// from the tensor's table: the same additions into the sketch in the same
// order, so the same sketch to the bit.
func sketchByTable(out []float64, table []uint16, data, base []float32) (float64, uint32) {
	out = out[:SketchDims]
	table = table[:len(data)]
	var sq float64
	var bad uint32
	eachDeltaChunk(data, base, func(off int, c []float32) {
		s, b := sketchByTable4(out, table[off:off+len(c)], c)
		sq += s
		bad |= b
	})
	return sq, bad
}

// sketchByTable4 goes four values at a time: four partial sums of squares,
// and the four sketch additions in index order.
func sketchByTable4(out []float64, table []uint16, data []float32) (float64, uint32) {
	out = out[:SketchDims]
	table = table[:len(data)]
	var s0, s1, s2, s3 float64
	var bad uint32
	add := func(e uint16, f float64) {
		out[e&entryBucketMask] += math.Float64frombits(math.Float64bits(f) ^ uint64(e>>entrySignShift)<<63)
	}
	n := len(data) &^ 3
	for i := 0; i < n; i += 4 {
		d, e := data[i:i+4:i+4], table[i:i+4:i+4]
		bad |= notFinite(math.Float32bits(d[0])) | notFinite(math.Float32bits(d[1])) |
			notFinite(math.Float32bits(d[2])) | notFinite(math.Float32bits(d[3]))
		f0, f1, f2, f3 := float64(d[0]), float64(d[1]), float64(d[2]), float64(d[3])
		s0 += f0 * f0
		s1 += f1 * f1
		s2 += f2 * f2
		s3 += f3 * f3
		add(e[0], f0)
		add(e[1], f1)
		add(e[2], f2)
		add(e[3], f3)
	}
	for i := n; i < len(data); i++ {
		f := float64(data[i])
		bad |= notFinite(math.Float32bits(data[i]))
		s0 += f * f
		add(table[i], f)
	}
	return (s0 + s1) + (s2 + s3), bad
}
