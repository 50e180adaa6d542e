package store

import "unsafe"

// bytesOf returns the bytes of s without copying. The result is read-only:
// strings in the index are immutable and shared.
func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
