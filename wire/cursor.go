package wire

import (
	"encoding/binary"
	"fmt"
)

// cursor reads a control message front to back; the first short read sticks
// as err, so decoders check once at the end of a step.
type cursor struct {
	b   []byte
	err error
	at  string
}

func (c *cursor) take(n int, what string) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || len(c.b) < n {
		c.err = fmt.Errorf("%w: truncated %s", ErrMalformed, what)
		return nil
	}
	f := c.b[:n:n]
	c.b = c.b[n:]
	return f
}

func (c *cursor) u8(what string) uint8 {
	f := c.take(1, what)
	if f == nil {
		return 0
	}
	return f[0]
}

func (c *cursor) u16(what string) uint16 {
	f := c.take(2, what)
	if f == nil {
		return 0
	}
	return binary.BigEndian.Uint16(f)
}

func (c *cursor) u32(what string) uint32 {
	f := c.take(4, what)
	if f == nil {
		return 0
	}
	return binary.BigEndian.Uint32(f)
}

func (c *cursor) str8(what string) string {
	n := int(c.u8(what + " length"))
	return string(c.take(n, what))
}

func (c *cursor) done(what string) error {
	if c.err != nil {
		return c.err
	}
	if len(c.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after %s", ErrMalformed, len(c.b), what)
	}
	return nil
}
