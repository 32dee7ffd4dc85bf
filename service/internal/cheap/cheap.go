// Package cheap reports the C heap of the process: Tesseract and Leptonica allocate outside
// the Go heap, so Go's runtime metrics do not see their leaks.
package cheap

// #include <malloc.h>
import "C"

// InUse returns the bytes currently allocated with malloc/new (glibc mallinfo2: uordblks
// for the main arena and hblkhd for blocks served by mmap).
func InUse() uint64 {
	mi := C.mallinfo2()
	return uint64(mi.uordblks) + uint64(mi.hblkhd)
}
