// Package testsupport holds what the tests and the benchmark share and the service never
// uses: test images and hostile inputs (testimages), running tests in a re-executed process
// (testrun), and attack scenarios against a running service (hostile). The service's own
// packages are under service/internal.
package testsupport
