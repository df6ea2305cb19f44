package config

import (
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// screenLiterals finds number and date literals that are valid TOML syntax
// but do not fit a 64-bit value (99999999999999999999, 1e400). go-toml
// stops decoding at the first of them with an error that names no key, so
// each one is reported here with its key and line, and overwritten in a
// copy of data by a placeholder of the same length so that decoding can go
// on and report the file's other problems. The keys reported are returned
// so the decoder leaves them at their defaults. A document that does not
// parse is returned unchanged; the decoder reports its syntax error.
func screenLiterals(data []byte, probs *Problems) ([]byte, map[string]bool) {
	s := literalScreen{data: data, probs: probs, reported: map[string]bool{}}
	s.p.Reset(data)
	var table []string
	for s.p.NextExpression() {
		e := s.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
		case unstable.KeyValue:
			s.keyValue(table, e)
		}
	}
	if s.p.Error() != nil {
		return data, nil
	}
	return s.data, s.reported
}

type literalScreen struct {
	p        unstable.Parser
	data     []byte // copied on the first placeholder, never the caller's
	copied   bool
	probs    *Problems
	reported map[string]bool
}

func (s *literalScreen) keyValue(table []string, kv *unstable.Node) {
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
		line := s.p.Shape(v.Raw).Start.Line
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
