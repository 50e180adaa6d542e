// Package ops serves what an operator looks at over HTTP: Prometheus
// metrics, /healthz and /readyz, the cluster as JSON (/v1/status,
// /v1/members), and a live status page embedded in the binary. It reads
// counters at request time and adds nothing to the data path. It must not
// change any state.
package ops
