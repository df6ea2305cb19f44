package config

import (
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// MaxKeys bounds the keys and tables of a federation.toml (the full
// example has about 35). go-toml checks each new key against its table's
// earlier keys one by one, so a document of tens of thousands of keys
// would take minutes to decode.
const MaxKeys = 1000

// screenDocument walks the syntax tree before go-toml decodes it, for two
// things go-toml handles badly.
//
// Number and date literals that are valid TOML syntax but do not fit a
// 64-bit value (99999999999999999999, 1e400): go-toml stops decoding at the
// first of them with an error that names no key, so each one is reported
// here with its key and line, and overwritten in a copy of data by a
// placeholder of the same length so that decoding can go on and report the
// file's other problems. The keys reported are returned so the decoder
// leaves them at their defaults.
//
// Documents of more than MaxKeys keys and tables: reported at the first
// key over the limit; ok is false and the document must not be decoded.
//
// A document that does not parse is returned unchanged with ok true; the
// decoder reports its syntax error.
func screenDocument(data []byte, probs *Problems) (screened []byte, reported map[string]bool, ok bool) {
	s := literalScreen{data: data, lines: newLineTable(data), probs: probs, reported: map[string]bool{}}
	s.p.Reset(data)
	var table []string
	for s.p.NextExpression() {
		e := s.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			s.count(e)
		case unstable.KeyValue:
			s.keyValue(table, e)
		}
		if s.keys > MaxKeys {
			probs.addAt(s.overLine, "", "more than %d keys and tables: this is not a federation.toml", MaxKeys)
			return data, nil, false
		}
	}
	if s.p.Error() != nil {
		return data, nil, true
	}
	return s.data, s.reported, true
}

type literalScreen struct {
	p        unstable.Parser
	data     []byte // copied on the first placeholder, never the caller's
	copied   bool
	lines    lineTable
	probs    *Problems
	reported map[string]bool
	keys     int // keys and table headers seen, inline tables included
	overLine int // line of the first key over MaxKeys
}

func (s *literalScreen) count(keyed *unstable.Node) {
	s.keys++
	if s.keys == MaxKeys+1 {
		if it := keyed.Key(); it.Next() {
			s.overLine = s.lines.line(it.Node().Raw.Offset)
		}
	}
}

func (s *literalScreen) keyValue(table []string, kv *unstable.Node) {
	s.count(kv)
	full := append(append([]string(nil), table...), keyParts(kv.Key())...)
	s.value(strings.Join(full, "."), kv.Value())
}

func (s *literalScreen) value(key string, v *unstable.Node) {
	if v == nil {
		return
	}
	switch v.Kind {
	case unstable.Array:
		it := v.Children()
		for it.Next() {
			s.value(key, it.Node())
		}
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				s.keyValue(strings.Split(key, "."), c)
			}
		}
	case unstable.Integer, unstable.Float, unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		raw := string(s.p.Raw(v.Raw))
		var probe map[string]any
		err := toml.Unmarshal([]byte("v = "+raw), &probe)
		if err == nil {
			return
		}
		line := s.lines.line(v.Raw.Offset)
		switch v.Kind {
		case unstable.Integer:
			s.probs.addAt(line, key, "integer %s does not fit in 64 bits", raw)
		case unstable.Float:
			s.probs.addAt(line, key, "number %s is out of the range of a 64-bit float", raw)
		default:
			s.probs.addAt(line, key, "value %s: %s", raw, strings.TrimPrefix(err.Error(), "toml: "))
		}
		s.reported[key] = true
		s.placeholder(int(v.Raw.Offset), int(v.Raw.Length))
	}
}

// placeholder overwrites data[off:off+n] with "0" and spaces: still valid
// TOML in any value position, and on the same line.
func (s *literalScreen) placeholder(off, n int) {
	if !s.copied {
		s.data = append([]byte(nil), s.data...)
		s.copied = true
	}
	s.data[off] = '0'
	for i := off + 1; i < off+n; i++ {
		s.data[i] = ' '
	}
}
