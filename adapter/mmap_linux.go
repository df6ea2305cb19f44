package adapter

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only. MAP_POPULATE builds the page
// tables in the one system call (reading the file in if it is not cached)
// rather than taking a page fault every few pages as the values are first
// touched.
func mapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
}

func unmapFile(data []byte) error { return syscall.Munmap(data) }
