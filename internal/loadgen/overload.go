package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/contactstore/contactstore/internal/opsapi"
)

// OverloadConfig configures an overload run: a client load on the first
// server for Ingest.Duration while, every MarkerEvery, a marker contact is
// written on that server, confirmed by ListAll, and timed until each other
// server lists it; then the time until every server reports the same
// digest after the load stopped, and what each server's /metrics counted
// meanwhile.
type OverloadConfig struct {
	// Dialer, if set, replaces TCP (TLS).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// Servers are the contact addresses; the first is written to. A server
	// may not be up yet when the run starts (a member joining later).
	Servers []string
	// HTTP are the servers' HTTP addresses, in the same order.
	HTTP []string
	// Ingest is the load; its Servers and Duration are set by Overload.
	Ingest IngestConfig
	// Duration is how long the load runs.
	Duration time.Duration
	// MarkerEvery is the time between two markers (the first one after it).
	MarkerEvery time.Duration
	// MarkerWait is how long a marker is waited for on each server.
	MarkerWait time.Duration
	// PollGap is the pause between two ListAll polls of a server (the
	// resolution of marker times).
	PollGap time.Duration
	// ConvergeTimeout bounds the wait for equal digests after the load.
	ConvergeTimeout time.Duration
	// Prefix names the marker book (a fresh one per run keeps runs apart).
	Prefix string
	// Status reads a server's /v1/status; Metrics its /metrics text.
	Status  func(ctx context.Context, httpAddr string) (opsapi.Status, error)
	Metrics func(ctx context.Context, httpAddr string) (string, error)
	// Progress, if set, is told of events as they happen.
	Progress func(format string, args ...any)
}

// Marker is what one marker measured. Seen and Serving are indexed like
// Servers; Seen[0] is the write-to-confirmed time on the writer, -1 when a
// server never listed it within MarkerWait.
type Marker struct {
	At         time.Duration // written, since the load started
	Seen       []time.Duration
	Serving    []bool        // the server's health was "serving" when the marker was written
	AllServing time.Duration // the longest Seen among the other serving servers (-1: one never listed it)
}

// OverloadResult is what an overload run measured.
type OverloadResult struct {
	Ingest  IngestResult
	Markers []Marker
	// ServingAt is when each server was first seen serving, since the load
	// started (-1: never; 0: serving before the load).
	ServingAt []time.Duration
	// Converged is the time from the load's last send until every server
	// reported the same digest (-1: not within ConvergeTimeout).
	// ConvergedAfterAck is the same from the load's final ListAll replies.
	Converged, ConvergedAfterAck time.Duration
	// Final is each server's status once converged (or at the timeout).
	Final []opsapi.Status
	// Counters is, per server, how much each /metrics series grew during
	// the run (a server down at the start counts from 0).
	Counters []map[string]float64
}

// health tracks each server's last seen health and when it first served.
type health struct {
	mu        gosync.Mutex
	serving   []bool
	servingAt []time.Duration
}

func (h *health) snapshot() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.serving...)
}

// Overload runs the measurement.
func Overload(ctx context.Context, cfg OverloadConfig) (*OverloadResult, error) {
	switch {
	case len(cfg.Servers) < 2 || len(cfg.HTTP) != len(cfg.Servers):
		return nil, fmt.Errorf("at least two servers, each with its HTTP address")
	case cfg.Duration <= 0 || cfg.MarkerEvery <= 0:
		return nil, fmt.Errorf("duration and marker interval must be positive")
	case cfg.Status == nil || cfg.Metrics == nil:
		return nil, fmt.Errorf("status and metrics readers are needed")
	}
	if cfg.MarkerWait <= 0 {
		cfg.MarkerWait = 30 * time.Second
	}
	if cfg.PollGap <= 0 {
		cfg.PollGap = time.Millisecond
	}
	if cfg.ConvergeTimeout <= 0 {
		cfg.ConvergeTimeout = 2 * time.Minute
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("overload-%d", time.Now().UnixNano())
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	n := len(cfg.Servers)
	before := make([]map[string]float64, n)
	for i, a := range cfg.HTTP {
		if text, err := cfg.Metrics(ctx, a); err == nil {
			before[i] = ParseMetrics(text)
		}
	}

	res := &OverloadResult{Converged: -1, ConvergedAfterAck: -1}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	h := &health{serving: make([]bool, n), servingAt: make([]time.Duration, n)}
	for i := range h.servingAt {
		h.servingAt[i] = -1
	}
	var bg gosync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); pollHealth(runCtx, cfg, start, h) }()
	// Wait for the first health round so the first markers know who serves.
	for ctx.Err() == nil && time.Since(start) < 2*time.Second {
		h.mu.Lock()
		up := h.serving[0]
		h.mu.Unlock()
		if up {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The load.
	ingCfg := cfg.Ingest
	ingCfg.Servers, ingCfg.Duration, ingCfg.PerConn, ingCfg.Dialer = cfg.Servers[:1], cfg.Duration, 0, cfg.Dialer
	ingDone := make(chan error, 1)
	go func() {
		r, err := Ingest(ctx, ingCfg)
		res.Ingest = r
		ingDone <- err
	}()

	// The markers and their followers.
	f := newFollowers(cfg)
	for i := 1; i < n; i++ {
		bg.Add(1)
		go func() { defer bg.Done(); f.follow(runCtx, i) }()
	}
	w, err := client.Dial(ctx, cfg.Servers[:1], cfg.Prefix, opts(cfg.Dialer))
	if err != nil {
		cancel()
		bg.Wait()
		<-ingDone
		return nil, fmt.Errorf("marker writer: %w", err)
	}
	defer w.Close()
	loadStart := start
	for k := 1; time.Duration(k)*cfg.MarkerEvery < cfg.Duration && ctx.Err() == nil; k++ {
		at := time.Duration(k) * cfg.MarkerEvery
		time.Sleep(time.Until(loadStart.Add(at)))
		name := fmt.Sprintf("marker-%03d", k)
		m := f.add(name, h.snapshot())
		if err := w.Update(name, strconv.Itoa(k)); err == nil {
			err = w.Flush()
		}
		m.sent = time.Now()
		m.At = m.sent.Sub(loadStart)
		f.published(m)
		found := false
		if err := w.ListFunc(func(c, _ []byte) { found = found || string(c) == name }); err != nil {
			cancel()
			bg.Wait()
			<-ingDone
			return nil, fmt.Errorf("marker %s on the writer: %w", name, err)
		}
		if !found {
			cancel()
			bg.Wait()
			<-ingDone
			return nil, fmt.Errorf("marker %s: the writer's ListAll does not list it", name)
		}
		f.seen(m, 0, time.Now())
		cfg.Progress("marker %s written at %.1fs, confirmed by ListAll in %.1f ms", name, m.At.Seconds(),
			float64(m.Seen[0])/float64(time.Millisecond))
	}

	ingErr := <-ingDone
	acked := time.Now()
	cfg.Progress("load done: %d updates, %.0f/s; waiting for markers and equal digests", res.Ingest.Updates, res.Ingest.Rate)
	// Equal digests everywhere.
	deadline := acked.Add(cfg.ConvergeTimeout)
	res.Final = make([]opsapi.Status, n)
	for ctx.Err() == nil {
		equal := true
		for i, a := range cfg.HTTP {
			st, err := cfg.Status(ctx, a)
			if err != nil {
				equal = false
				break
			}
			res.Final[i] = st
			if st.Digest != res.Final[0].Digest {
				equal = false
				break
			}
		}
		now := time.Now()
		if equal {
			res.Converged, res.ConvergedAfterAck = now.Sub(res.Ingest.SendEnd), now.Sub(acked)
			break
		}
		if now.After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, a := range cfg.HTTP { // statuses that were not read in the last round
		if st, err := cfg.Status(ctx, a); err == nil && res.Final[i].Name == "" {
			res.Final[i] = st
		}
	}
	f.wait(ctx)
	cancel()
	bg.Wait()
	res.Markers = f.results()
	h.mu.Lock()
	res.ServingAt = append([]time.Duration(nil), h.servingAt...)
	h.mu.Unlock()
	res.Counters = make([]map[string]float64, n)
	for i, a := range cfg.HTTP {
		res.Counters[i] = map[string]float64{}
		text, err := cfg.Metrics(ctx, a)
		if err != nil {
			continue
		}
		for k, v := range ParseMetrics(text) {
			res.Counters[i][k] = v - before[i][k]
		}
	}
	return res, ingErr
}

// pollHealth reads every server's health every 100 ms.
func pollHealth(ctx context.Context, cfg OverloadConfig, start time.Time, h *health) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for i, a := range cfg.HTTP {
			st, err := cfg.Status(ctx, a)
			serving := err == nil && st.Health == "serving"
			h.mu.Lock()
			h.serving[i] = serving
			if serving && h.servingAt[i] < 0 {
				h.servingAt[i] = max(0, time.Since(start))
			}
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// marker is one marker in flight.
type marker struct {
	Marker
	name string
	sent time.Time
	left int // servers that have not listed it yet
}

// followers poll the marker book on every server but the writer.
type followers struct {
	cfg     OverloadConfig
	mu      gosync.Mutex
	changed chan struct{} // closed when a marker is published or done
	all     []*marker
}

func newFollowers(cfg OverloadConfig) *followers {
	return &followers{cfg: cfg, changed: make(chan struct{})}
}

func (f *followers) add(name string, serving []bool) *marker {
	m := &marker{name: name, Marker: Marker{Serving: serving, Seen: make([]time.Duration, len(serving)), AllServing: -1}}
	for i := range m.Seen {
		m.Seen[i] = -1
	}
	return m
}

func (f *followers) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// published makes a sent marker visible to the followers.
func (f *followers) published(m *marker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m.left = len(m.Seen)
	f.all = append(f.all, m)
	f.broadcast()
}

func (f *followers) seen(m *marker, server int, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Seen[server] >= 0 {
		return
	}
	m.Seen[server] = at.Sub(m.sent)
	m.left--
	if m.left == 0 {
		f.broadcast()
	}
}

// pending returns the markers server i has not listed and still waits for.
func (f *followers) pending(i int) ([]*marker, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*marker
	for _, m := range f.all {
		if m.Seen[i] < 0 && time.Since(m.sent) < f.cfg.MarkerWait {
			out = append(out, m)
		}
	}
	return out, f.changed
}

// follow polls server i's marker book until the run ends.
func (f *followers) follow(ctx context.Context, i int) {
	var c *client.Client
	defer func() {
		if c != nil {
			_ = c.Close()
		}
	}()
	for ctx.Err() == nil {
		todo, changed := f.pending(i)
		if len(todo) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-time.After(100 * time.Millisecond): // markers age out
			}
			continue
		}
		if c == nil {
			var err error
			if c, err = client.Dial(ctx, f.cfg.Servers[i:i+1], f.cfg.Prefix, opts(f.cfg.Dialer)); err != nil {
				c = nil
				time.Sleep(20 * time.Millisecond) // not up yet (a member still starting)
				continue
			}
		}
		var listed []string
		err := c.ListFunc(func(name, _ []byte) { listed = append(listed, string(name)) })
		now := time.Now()
		if err != nil {
			_ = c.Close()
			c = nil
			continue
		}
		for _, m := range todo {
			for _, name := range listed {
				if name == m.name {
					f.seen(m, i, now)
				}
			}
		}
		time.Sleep(f.cfg.PollGap)
	}
}

// wait returns once every marker was listed everywhere or waited for
// MarkerWait.
func (f *followers) wait(ctx context.Context) {
	for ctx.Err() == nil {
		f.mu.Lock()
		var last time.Time
		open := false
		for _, m := range f.all {
			if m.left > 0 {
				open = true
				last = m.sent
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if !open || time.Since(last) >= f.cfg.MarkerWait {
			return
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(time.Until(last.Add(f.cfg.MarkerWait))):
		}
	}
}

func (f *followers) results() []Marker {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Marker, len(f.all))
	for k, m := range f.all {
		r := m.Marker
		r.Seen = append([]time.Duration(nil), m.Seen...)
		r.AllServing = 0
		for i := 1; i < len(r.Seen); i++ {
			if !r.Serving[i] {
				continue
			}
			if r.Seen[i] < 0 {
				r.AllServing = -1
				break
			}
			r.AllServing = max(r.AllServing, r.Seen[i])
		}
		out[k] = r
	}
	return out
}

// ParseMetrics reads Prometheus text exposition into series → value; the
// key is the series as written (name and labels).
func ParseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[line[:sp]] = v
	}
	return out
}
