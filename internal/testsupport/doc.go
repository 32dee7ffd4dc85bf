// Package testsupport holds what the tests and the benchmark share and the service never
// uses: test images and hostile inputs (testimages), attack scenarios against a running service
// (hostile), /proc readings of a process tree (proctree), a log buffer goroutines can share
// (syncbuffer), test documents (testdocs) and a shared PDFium cache (PDFiumCache). The service's own packages are under service/internal.
package testsupport
