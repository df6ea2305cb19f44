package adapter

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Metadata keys of an update file (docs/FORMATS.md).
const (
	KeyFormat      = "daf.format"
	KeyKind        = "daf.kind"
	KeyGroups      = "daf.groups"
	KeyNode        = "daf.node"
	KeyRound       = "daf.round"
	KeySamples     = "daf.samples"
	KeyTier        = "daf.tier"
	KeyScope       = "daf.scope"
	KeyRank        = "daf.rank"
	KeyLoraAlpha   = "daf.lora_alpha"
	KeyQuality     = "daf.quality"
	KeyFanInFanOut = "daf.fan_in_fan_out"
)

var knownKeys = map[string]bool{
	KeyFormat: true, KeyKind: true, KeyGroups: true, KeyNode: true, KeyRound: true, KeySamples: true,
	KeyTier: true, KeyScope: true, KeyRank: true, KeyLoraAlpha: true, KeyQuality: true, KeyFanInFanOut: true,
}

// tierNames are the privacy tiers as written in daf.tier. They repeat
// privacy.ParseTier's names because privacy works on updates and so imports
// this package.
var tierNames = map[string]bool{"private": true, "group": true, "tenant": true, "public": true}

// maxT is the top of the timestep axis for daf.groups ranges.
const maxT = 1000

// NodeFromName is the default daf.node for a file: its base name without
// the .safetensors extension ("updates/n3.safetensors" → "n3").
func NodeFromName(name string) string {
	if name == "" {
		return ""
	}
	return strings.TrimSuffix(filepath.Base(name), ".safetensors")
}

// FormatGroups writes group ranges as daf.groups does: "coarse:700-1000,...".
func FormatGroups(gs []GroupRange) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = fmt.Sprintf("%s:%d-%d", g.Name, g.Start, g.End)
	}
	return strings.Join(parts, ",")
}

// ParseGroups reads a daf.groups value: distinct names, each with a
// non-empty range [start, end) inside [0, 1000].
func ParseGroups(s string) ([]GroupRange, error) {
	var out []GroupRange
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, rng, ok := strings.Cut(strings.TrimSpace(part), ":")
		lo, hi, ok2 := strings.Cut(rng, "-")
		if !ok || !ok2 || name == "" {
			return nil, fmt.Errorf("group %q is not name:start-end", part)
		}
		start, err1 := strconv.Atoi(lo)
		end, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("group %q: start and end must be integers", part)
		}
		if start < 0 || end > maxT || start >= end {
			return nil, fmt.Errorf("group %q: want 0 <= start < end <= %d", part, maxT)
		}
		if seen[name] {
			return nil, fmt.Errorf("group %q named twice", name)
		}
		seen[name] = true
		out = append(out, GroupRange{Name: name, Start: start, End: end})
	}
	// Each t must select one bank: sorted by start, a range that begins
	// before the furthest end so far overlaps the range that reached it.
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return out[order[i]].Start < out[order[j]].Start })
	reach := order[0]
	for _, i := range order[1:] {
		if g, r := out[i], out[reach]; g.Start < r.End {
			first, second := out[min(i, reach)], out[max(i, reach)] // as written
			return nil, fmt.Errorf("groups %q and %q overlap on t in [%d, %d)", first.Name, second.Name, g.Start, min(r.End, g.End))
		}
		if out[i].End > out[reach].End {
			reach = i
		}
	}
	return out, nil
}

// checkMetadata validates typed metadata before it is written, so that
// Marshal never produces a file Unmarshal would refuse.
func checkMetadata(m Metadata) error {
	if m.Format != "" && m.Format != Format {
		return fmt.Errorf("%s %q is not %q", KeyFormat, m.Format, Format)
	}
	if m.Kind != "" && m.Kind != KindDelta && m.Kind != KindAdapter {
		return fmt.Errorf("%s %q: want delta or adapter", KeyKind, m.Kind)
	}
	if len(m.Groups) > 0 {
		if _, err := ParseGroups(FormatGroups(m.Groups)); err != nil {
			return fmt.Errorf("%s: %v", KeyGroups, err)
		}
	}
	if math.IsNaN(m.Samples) || math.IsInf(m.Samples, 0) || m.Samples < 0 {
		return fmt.Errorf("%s %v: want a finite number >= 0", KeySamples, m.Samples)
	}
	if m.Tier != "" && !tierNames[m.Tier] {
		return fmt.Errorf("%s %q: want private, group, tenant or public", KeyTier, m.Tier)
	}
	if m.Rank < 0 {
		return fmt.Errorf("%s %d: want >= 1 (or 0 to derive from shapes)", KeyRank, m.Rank)
	}
	if math.IsNaN(m.LoraAlpha) || math.IsInf(m.LoraAlpha, 0) || m.LoraAlpha < 0 {
		return fmt.Errorf("%s %v: want a finite number > 0 (or 0 for = rank)", KeyLoraAlpha, m.LoraAlpha)
	}
	for g, q := range m.Quality {
		if err := checkQuality(q); err != nil {
			return fmt.Errorf("%s group %s: %v", KeyQuality, printable(g), err)
		}
	}
	return nil
}

func checkQuality(q GroupQuality) error {
	vals := map[string]float64{"ppl_before": q.PPLBefore, "ppl_after": q.PPLAfter}
	for task, a := range q.TaskAccuracy {
		vals[printable("task_accuracy."+task)] = a
	}
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		if v := vals[k]; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%s = %v: want a finite number >= 0", k, v)
		}
	}
	for _, task := range slices.Sorted(maps.Keys(q.TaskAccuracy)) {
		if a := q.TaskAccuracy[task]; a > 1 {
			return fmt.Errorf("%s = %v: an accuracy is a fraction in [0, 1]", printable("task_accuracy."+task), a)
		}
	}
	return nil
}

// encodeMetadata renders every daf.* key (rank, alpha and quality only when
// set) plus the unknown keys kept in Extra.
func encodeMetadata(m Metadata) map[string]string {
	out := map[string]string{}
	for k, v := range m.Extra {
		if !knownKeys[k] {
			out[k] = v
		}
	}
	out[KeyFormat] = Format
	kind := m.Kind
	if kind == "" {
		kind = KindDelta
	}
	out[KeyKind] = string(kind)
	groups := m.Groups
	if len(groups) == 0 {
		groups = DefaultGroups
	}
	out[KeyGroups] = FormatGroups(groups)
	out[KeyNode] = m.Node
	out[KeyRound] = strconv.FormatUint(m.Round, 10)
	out[KeySamples] = strconv.FormatFloat(m.Samples, 'g', -1, 64)
	tier := m.Tier
	if tier == "" {
		tier = "public"
	}
	out[KeyTier] = tier
	out[KeyScope] = m.Scope
	if m.Rank > 0 {
		out[KeyRank] = strconv.Itoa(m.Rank)
	}
	if m.LoraAlpha > 0 {
		out[KeyLoraAlpha] = strconv.FormatFloat(m.LoraAlpha, 'g', -1, 64)
	}
	if m.FanInFanOut {
		out[KeyFanInFanOut] = "true"
	}
	if len(m.Quality) > 0 {
		// encoding/json sorts map keys, so the same update gives the same bytes.
		b, _ := json.Marshal(m.Quality)
		out[KeyQuality] = string(b)
	}
	return out
}

// decodeMetadata reads daf.* keys with their defaults; name supplies the
// default node. Any value that does not parse is an ErrCorrupt naming the key.
func decodeMetadata(raw map[string]string, file string) (Metadata, error) {
	m := New().Meta
	m.Node = NodeFromName(file)
	bad := func(key, format string, args ...any) error {
		return corrupt(file, "metadata "+key, format, args...)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		switch k {
		case KeyFormat:
			if v != Format {
				return m, bad(k, "format %q is not supported (want %q)", v, Format)
			}
		case KeyKind:
			if v != string(KindDelta) && v != string(KindAdapter) {
				return m, bad(k, "%q: want delta or adapter", v)
			}
			m.Kind = Kind(v)
		case KeyGroups:
			gs, err := ParseGroups(v)
			if err != nil {
				return m, bad(k, "%v", err)
			}
			m.Groups = gs
		case KeyNode:
			m.Node = v
		case KeyRound:
			r, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return m, bad(k, "%q is not a round number", v)
			}
			m.Round = r
		case KeySamples:
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
				return m, bad(k, "%q: want a finite number >= 0", v)
			}
			m.Samples = s
		case KeyTier:
			if !tierNames[v] {
				return m, bad(k, "%q: want private, group, tenant or public", v)
			}
			m.Tier = v
		case KeyScope:
			m.Scope = v
		case KeyRank:
			r, err := strconv.Atoi(v)
			if err != nil || r < 1 {
				return m, bad(k, "%q: want an integer >= 1", v)
			}
			m.Rank = r
		case KeyLoraAlpha:
			a, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(a) || math.IsInf(a, 0) || a <= 0 {
				return m, bad(k, "%q: want a finite number > 0", v)
			}
			m.LoraAlpha = a
		case KeyFanInFanOut:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return m, bad(k, "%q: want true or false", v)
			}
			m.FanInFanOut = b
		case KeyQuality:
			var q map[string]GroupQuality
			if err := json.Unmarshal([]byte(v), &q); err != nil {
				return m, bad(k, "invalid JSON: %v", err)
			}
			for g, gq := range q {
				if err := checkQuality(gq); err != nil {
					return m, bad(k, "group %s: %v", printable(g), err)
				}
			}
			m.Quality = q
		default:
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k] = v
		}
	}
	return m, nil
}
