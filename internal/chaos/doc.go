// Package chaos holds the chaos test: it builds the real contact-server
// binary, runs five servers on 127.0.0.11–15, writes through clients that
// fail over between them while members are killed with SIGKILL and
// restarted, and then checks convergence and that no acknowledged change
// was lost or resurrected. workload.go holds the writers and the checker,
// which the Compose chaos suite (internal/composetest) reuses.
//
// CHAOS_DURATION sets the length of the fault phase (default 15s; `make
// chaos` runs 10m).
package chaos
