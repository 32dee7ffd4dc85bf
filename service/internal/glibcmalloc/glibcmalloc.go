// Package glibcmalloc reports and tunes the C heap of the process: Tesseract and Leptonica allocate
// outside the Go heap, so Go's runtime metrics and GC do not see or manage that memory.
package glibcmalloc

// #include <malloc.h>
import "C"

// InUse returns the bytes currently allocated with malloc/new, over all arenas (glibc
// mallinfo2: uordblks for the arenas and hblkhd for blocks served by mmap).
func InUse() uint64 {
	mi := C.mallinfo2()
	return uint64(mi.uordblks) + uint64(mi.hblkhd)
}

// LimitArenas caps glibc's malloc arenas at n. By default glibc may create up to 8 per core,
// one per thread that meets contention, and Go runs cgo calls on whichever OS thread is free,
// so Tesseract's per-page allocations spread over many arenas whose freed memory is kept:
// resident memory creeps up over thousands of pages while the bytes in use stay flat. One arena
// per OCR worker, with the engine's periodic Trim, keeps it in a narrow band (README,
// Benchmarks). Call it before any OCR work; it is what MALLOC_ARENA_MAX does, without depending
// on the environment.
func LimitArenas(n int) bool {
	return C.mallopt(C.M_ARENA_MAX, C.int(max(n, 1))) == 1
}

// Trim gives free C heap memory back to the system (glibc malloc_trim).
func Trim() { C.malloc_trim(0) }
