// Package chaostest is the chaos workload, kept out of the binaries like
// httptest: failing-over writers that remember which changes a ListAll
// acknowledged (Writer, ExecWriter), the checker that turns their history
// and the converged books into lost/resurrected counts (Writer.Check), and
// Converge, which waits until every server lists identical books. Only
// tests import it: its own chaos test and the Compose suite
// (internal/composetest).
//
// Its test (chaos_test.go, procs_test.go; only with -tags slow, the full
// suite) builds the real contact-server binary, runs five servers on
// 127.0.0.11–15, writes through clients that fail over between them while
// members are killed with SIGKILL and restarted, and checks convergence
// and that no acknowledged change was lost or resurrected; the servers'
// wall clocks disagree by up to 6 s (--clock-offset -3s..+3s).
// CHAOS_DURATION sets the length of the fault phase (default 15s;
// `make chaos` runs 10m).
//
// The time tests (time_test.go, partition_test.go) run three servers on
// 127.0.1.x with their clocks shifted (--clock-offset: 30 days later, a
// year ahead) or cut off by iptables rules (real packet loss; root only,
// it skips saying why otherwise), and check the rules about time of
// PROTOCOL.md "Stamps and the merge rule".
//
// TestThirtyTwoMembers (members_test.go) runs 32 servers on 127.0.3.1–32
// joining through one seed, kills 8 of them with SIGKILL at once and checks
// that all 32 converge.
//
// Its exported code must not import the server side: it talks to servers
// only through the client library, as a user would.
package chaostest
