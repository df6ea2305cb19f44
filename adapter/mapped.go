package adapter

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"unsafe"
)

// Mapping is an update file mapped read-only into memory, whose F32
// tensors use the file's pages as they are instead of a copy. It stays
// valid until Close; after Close, touching a tensor that aliased it is a
// fatal memory fault, so Close only once the update is no longer used.
//
// Files that cannot be mapped (an empty file, a file system without mmap,
// a platform without it) are read into memory instead; their Mapping holds
// no pages and Close does nothing.
type Mapping struct {
	path   string
	data   []byte // the file's bytes: its mapping, or a copy when mapped is false
	mapped bool
}

// ReadFileMapped reads an update file, or a PEFT adapter directory, like
// ReadFile, with the same checks and the same errors, but maps the file
// instead of copying it: little-endian F32 tensors at 4-byte-aligned
// offsets (every file this package writes) alias the mapping, so reading N
// files costs no N copies of their values, only the page-table entries and
// one parallel pass that rejects NaN and infinities. F16 and BF16 tensors,
// unaligned F32 data and big-endian hosts are widened into copies as
// ReadFile does.
//
// The tensors of the returned update are read-only: the pages are mapped
// PROT_READ, and a write to them is a fatal fault, not an error. Use it
// where the update is only read (aggregating files); use ReadFile for an
// update the caller may change.
//
// The mapping is only as stable as the file. Replacing the file by a rename
// (as WriteFile and every writer of this package do) leaves the mapped
// inode intact, but a file truncated in place while mapped makes the pages
// past its new end raise SIGBUS: during ReadFileMapped (header, finite
// check) that becomes an ErrCorrupt error naming the file, afterwards it
// crashes the process unless the values are read under Guard; a file
// rewritten in place changes the values under the reader. Callers that cannot rule that out, such as a daemon reading
// files others drop, should use ReadFile.
func ReadFileMapped(path string) (*Update, *Mapping, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		u, m, _, err := readPEFT(path, true)
		return u, m, err
	}
	m, err := openMapping(path)
	if err != nil {
		return nil, nil, err
	}
	u, err := m.decode()
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return u, m, nil
}

// Mapped reports whether the file's pages are mapped (false when it was
// read into memory instead).
func (m *Mapping) Mapped() bool { return m != nil && m.mapped }

// Close unmaps the file. Every tensor aliasing it becomes invalid. A nil
// Mapping, one holding a copy, or one already closed, closes as nil.
func (m *Mapping) Close() error {
	if m == nil || m.data == nil {
		return nil
	}
	data, mapped := m.data, m.mapped
	m.data, m.mapped = nil, false
	if !mapped {
		return nil
	}
	if err := unmapFile(data); err != nil {
		return fmt.Errorf("%s: unmapping: %w", m.path, err)
	}
	return nil
}

// openMapping maps a regular file read-only, or reads it where it cannot be
// mapped. Like readRegular it refuses devices and FIFOs, which have no size
// to map and may never end.
func openMapping(path string) (*Mapping, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The path may have been replaced since Stat; the open file decides.
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	m := &Mapping{path: path}
	// mmap refuses a length of 0, and a size beyond the address space
	// cannot be mapped whole: both are read, and the parser refuses them.
	if size := st.Size(); size > 0 && size <= math.MaxInt {
		if data, err := mapFile(f, int(size)); err == nil {
			m.data, m.mapped = data, true
			return m, nil
		}
	}
	if m.data, err = io.ReadAll(f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// decode parses the mapped bytes into an update, under the guard.
func (m *Mapping) decode() (*Update, error) {
	var u *Update
	var err error
	alias := m
	if !m.mapped {
		alias = nil
	}
	if gerr := m.guard(func() { u, _, err = unmarshal(m.data, m.path, alias) }); gerr != nil {
		return nil, gerr
	}
	return u, err
}

// guard runs fn, turning a memory fault on the mapping into an ErrCorrupt
// error. A fault there means the file shrank after it was mapped: the pages
// past its new end no longer exist and the kernel answers with SIGBUS,
// which Go turns into a panic only where the goroutine asked for it
// (debug.SetPanicOnFault). Any other fault is a bug and is re-raised.
func (m *Mapping) guard(fn func()) (err error) {
	if !m.mapped {
		fn()
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f, ok := r.(interface{ Addr() uintptr }); ok && m.contains(f.Addr()) {
			err = m.shrank()
			return
		}
		panic(r)
	}()
	fn()
	return nil
}

// Guard runs fn, which may read tensors aliasing any of ms, and turns a
// memory fault on one of those mappings into an ErrCorrupt error naming
// its file, as ReadFileMapped does while it reads. It covers the calling
// goroutine only: goroutines fn starts must set debug.SetPanicOnFault
// themselves and hand a fault's panic back to this one (the aggregate
// package's workers do). Any other panic is re-raised. Nil mappings and
// copies are ignored.
func Guard(ms []*Mapping, fn func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f, ok := r.(interface{ Addr() uintptr }); ok {
			for _, m := range ms {
				if m.Mapped() && m.contains(f.Addr()) {
					err = m.shrank()
					return
				}
			}
		}
		panic(r)
	}()
	fn()
	return nil
}

func (m *Mapping) shrank() error {
	return fmt.Errorf("%s: the file shrank while it was being read: %w", m.path, ErrCorrupt)
}

// contains reports whether addr lies in the mapped bytes. The start is
// rounded down to its page, as some machines (s390x) report a fault by the
// address of its page; the end is not rounded up, so that a fault on a
// small file mapped just after this one is not taken for this one's.
func (m *Mapping) contains(addr uintptr) bool {
	if len(m.data) == 0 {
		return false
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	base := start &^ (page - 1)
	end := start + uintptr(len(m.data))
	return addr >= base && addr < end
}
