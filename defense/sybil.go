package defense

import (
	"slices"
	"sort"

	"github.com/dafnet/daf/adapter"
)

// DetectSybil is the seed's detect_sybil: updates are linked when their
// cosine similarity is above cfg.SybilSimilarity, linked updates form
// clusters (connected components, i.e. single linkage), and in every
// cluster of at least cfg.SybilMinCluster distinct nodes all nodes but one
// are flagged. The one kept is the smallest node id, so every node of the
// federation flags the same ids whatever order the updates arrived in.
// The result is sorted.
//
// Cosines are exact, over the tensors two updates share by group, key and
// shape; norms are over each whole update. Updates that are nil, have no
// source, hold non-finite values or are all zero have no direction and are
// never linked. DetectSybil runs whether or not cfg.Enabled is set: the
// caller decides whether to use it (the federation's byzantine_detection).
// A SybilSimilarity or SybilMinCluster outside the range Config.Validate
// accepts (a zero Config, say) is replaced by DefaultConfig's value: a
// similarity of 0 would link every pair of honest updates.
func DetectSybil(updates []*adapter.Update, cfg Config) []string {
	def := DefaultConfig()
	if !finite(cfg.SybilSimilarity) || cfg.SybilSimilarity <= 0 || cfg.SybilSimilarity > 1 {
		cfg.SybilSimilarity = def.SybilSimilarity
	}
	if cfg.SybilMinCluster < 2 {
		cfg.SybilMinCluster = def.SybilMinCluster
	}
	if len(updates) == 0 {
		return nil
	}
	var vs []flatUpdate
	for _, u := range updates {
		if u == nil || u.Meta.Node == "" || u.CheckFinite() != nil {
			continue
		}
		f := flatten(u)
		if f.norm > 0 {
			vs = append(vs, f)
		}
	}
	parent := make([]int, len(vs))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if find(i) == find(j) {
				continue
			}
			if cosine(vs[i], vs[j]) > cfg.SybilSimilarity {
				parent[find(i)] = find(j)
			}
		}
	}
	clusters := map[int]map[string]bool{}
	for i, v := range vs {
		r := find(i)
		if clusters[r] == nil {
			clusters[r] = map[string]bool{}
		}
		clusters[r][v.node] = true
	}
	var flagged []string
	for _, members := range clusters {
		if len(members) < cfg.SybilMinCluster {
			continue
		}
		ids := sortedKeys(members)
		flagged = append(flagged, ids[1:]...)
	}
	sort.Strings(flagged)
	return slices.Compact(flagged)
}

type flatTensor struct {
	name  string
	shape []int
	data  []float32
}

type flatUpdate struct {
	node    string
	tensors []flatTensor // sorted by name
	norm    float64
}

func flatten(u *adapter.Update) flatUpdate {
	f := flatUpdate{node: u.Meta.Node, norm: u.L2()}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			t := u.Groups[g][k]
			f.tensors = append(f.tensors, flatTensor{name: g + "/" + k, shape: t.Shape, data: t.Data})
		}
	}
	sort.Slice(f.tensors, func(i, j int) bool { return f.tensors[i].name < f.tensors[j].name })
	return f
}

func cosine(a, b flatUpdate) float64 {
	var s float64
	i, j := 0, 0
	for i < len(a.tensors) && j < len(b.tensors) {
		ta, tb := a.tensors[i], b.tensors[j]
		switch {
		case ta.name < tb.name:
			i++
		case ta.name > tb.name:
			j++
		default:
			if slices.Equal(ta.shape, tb.shape) && len(ta.data) == len(tb.data) {
				for k := range ta.data {
					s += float64(ta.data[k]) * float64(tb.data[k])
				}
			}
			i++
			j++
		}
	}
	return s / (a.norm * b.norm)
}
