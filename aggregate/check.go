package aggregate

import (
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/dafnet/daf/adapter"
)

// nodeName is how errors and reports name an update: its daf.node, or its
// position when the node is not set.
func nodeName(u *adapter.Update, i int) string {
	if u.Meta.Node != "" {
		return u.Meta.Node
	}
	return fmt.Sprintf("update #%d", i+1)
}

// checkUpdates rejects nil updates, non-finite values (naming the node;
// unless scanValues is false) and mixed kinds.
func checkUpdates(updates []*adapter.Update, workers int, scanValues bool) error {
	if len(updates) == 0 {
		return ErrNoUpdates
	}
	for i, u := range updates {
		if u == nil {
			return fmt.Errorf("%w: update #%d is nil", ErrMismatch, i+1)
		}
		if kindOf(u) != kindOf(updates[0]) {
			return fmt.Errorf("%w: node %q is daf.kind=%s but node %q is daf.kind=%s", ErrMismatch,
				nodeName(u, i), kindOf(u), nodeName(updates[0], 0), kindOf(updates[0]))
		}
		for _, g := range u.GroupNames() {
			for _, k := range u.Keys(g) {
				t := u.Groups[g][k]
				if t == nil || t.NumElements() != len(t.Data) {
					return fmt.Errorf("%w: node %q tensor %s/%s: shape does not match its data", ErrMismatch, nodeName(u, i), g, k)
				}
			}
		}
	}
	if err := checkGroupRanges(updates); err != nil {
		return err
	}
	if !scanValues {
		return nil
	}
	if bad := firstNonFinite(updates, workers); bad >= 0 {
		u := updates[bad]
		return fmt.Errorf("node %q rejected: %w", nodeName(u, bad), u.CheckFinite())
	}
	return nil
}

// checkGroupRanges refuses to mix updates whose group of one name covers
// different timesteps (daf.groups): they adapt the model to different
// noise levels. A group without a range (a plain PEFT adapter's "all") is
// not compared.
func checkGroupRanges(updates []*adapter.Update) error {
	type owner struct {
		r    adapter.GroupRange
		node string
	}
	first := map[string]owner{}
	for i, u := range updates {
		for _, r := range u.Meta.Groups {
			if u.Groups[r.Name] == nil {
				continue
			}
			o, seen := first[r.Name]
			if !seen {
				first[r.Name] = owner{r, nodeName(u, i)}
				continue
			}
			if o.r.Start != r.Start || o.r.End != r.End {
				return fmt.Errorf("%w: group %s: node %q covers timesteps [%d, %d) but node %q covers [%d, %d)", ErrMismatch,
					r.Name, nodeName(u, i), r.Start, r.End, o.node, o.r.Start, o.r.End)
			}
		}
	}
	return nil
}

// firstNonFinite returns the index of the first update holding a NaN or an
// infinity, or -1. It scans every tensor in parallel, three integer
// operations per value with no dependency but an OR; the slow per-value
// check that names the tensor runs only on the culprit.
func firstNonFinite(updates []*adapter.Update, workers int) int {
	var owners []int
	var data [][]float32
	for i, u := range updates {
		for _, ts := range u.Groups {
			for _, t := range ts {
				owners = append(owners, i)
				data = append(data, t.Data)
			}
		}
	}
	lengths := make([]int, len(data))
	for k, d := range data {
		lengths[k] = len(d)
	}
	spans := splitSpans(lengths)
	bad := make([]bool, len(updates))
	var mu sync.Mutex
	runSpans(spans, effectiveWorkers(spans, workers), func(_ int, s span) {
		if !allFinite(data[s.t][s.lo:s.hi]) {
			mu.Lock()
			bad[owners[s.t]] = true
			mu.Unlock()
		}
	})
	for i, b := range bad {
		if b {
			return i
		}
	}
	return -1
}

func kindOf(u *adapter.Update) adapter.Kind {
	if u.Meta.Kind == "" {
		return adapter.KindDelta
	}
	return u.Meta.Kind
}

// member is one update's share in one group.
type member struct {
	node    string
	u       *adapter.Update
	tensors map[string]*adapter.Tensor
}

// groupMembers returns, for every group name present in any update (sorted),
// the updates that carry it.
func groupMembers(updates []*adapter.Update) ([]string, map[string][]member) {
	byGroup := map[string][]member{}
	for i, u := range updates {
		for _, g := range u.GroupNames() {
			byGroup[g] = append(byGroup[g], member{node: nodeName(u, i), u: u, tensors: u.Groups[g]})
		}
	}
	names := make([]string, 0, len(byGroup))
	for g := range byGroup {
		names = append(names, g)
	}
	sort.Strings(names)
	return names, byGroup
}

// checkSameKeys requires every member to carry exactly the first member's
// tensor keys; it returns them sorted.
func checkSameKeys(group string, ms []member) ([]string, error) {
	keys := ms[0].u.Keys(group)
	for _, m := range ms[1:] {
		if len(m.tensors) != len(keys) {
			return nil, fmt.Errorf("%w: group %s: node %q has %d tensors, node %q has %d", ErrMismatch,
				group, m.node, len(m.tensors), ms[0].node, len(keys))
		}
		for _, k := range keys {
			if m.tensors[k] == nil {
				return nil, fmt.Errorf("%w: group %s: node %q lacks tensor %s that node %q has", ErrMismatch,
					group, m.node, k, ms[0].node)
			}
		}
	}
	return keys, nil
}

// checkSameShapes requires every member's tensor under each key to have the
// first member's shape.
func checkSameShapes(group string, keys []string, ms []member) error {
	for _, k := range keys {
		first := ms[0].tensors[k]
		for _, m := range ms[1:] {
			if t := m.tensors[k]; !t.SameShape(first) {
				return fmt.Errorf("%w: group %s tensor %s: node %q has shape %v, node %q has %v", ErrMismatch,
					group, k, m.node, t.Shape, ms[0].node, first.Shape)
			}
		}
	}
	return nil
}

// allFinite reports whether no value is NaN or ±Inf: those are exactly the
// floats whose exponent field is all ones, and adding one to the lowest
// exponent bit carries out of that field only then.
func allFinite(xs []float32) bool {
	var f0, f1, f2, f3 uint32
	i := 0
	for ; i+4 <= len(xs); i += 4 {
		q := xs[i : i+4 : i+4]
		f0 |= math.Float32bits(q[0])&0x7f800000 + 0x00800000
		f1 |= math.Float32bits(q[1])&0x7f800000 + 0x00800000
		f2 |= math.Float32bits(q[2])&0x7f800000 + 0x00800000
		f3 |= math.Float32bits(q[3])&0x7f800000 + 0x00800000
	}
	for _, v := range xs[i:] {
		f0 |= math.Float32bits(v)&0x7f800000 + 0x00800000
	}
	return (f0|f1|f2|f3)&0x80000000 == 0
}
