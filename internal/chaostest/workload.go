package chaostest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/contactstore/contactstore/internal/client"
)

// op is one change a writer made, and whether a ListAll acknowledged it.
type op struct {
	contact string
	phone   string // "" for a delete
	acked   bool
}

// Writer owns one user's book: it creates contacts with fresh names and
// deletes some of them, acknowledging with ListAll every few ops, and fails
// over to the next server when one dies. Every key is written at most
// twice (create, then maybe delete), so the expected final state is exact.
type Writer struct {
	User    string
	dialer  Dialer
	servers []string
	rng     *rand.Rand
	ops     []op
	reconn  int
}

// Dialer replaces TCP for the connections this package makes (TLS).
type Dialer = func(ctx context.Context, addr string) (net.Conn, error)

// UseDialer makes the writer connect through d.
func (w *Writer) UseDialer(d Dialer) *Writer { w.dialer = d; return w }

// NewWriter returns a writer for user over servers (tried in a random
// order at every reconnect), seeded for repeatability.
func NewWriter(user string, servers []string, seed uint64) *Writer {
	return &Writer{User: user, servers: servers, rng: rand.New(rand.NewPCG(seed, 42))}
}

// Stats returns how many changes were made, acknowledged, and how often
// the writer reconnected.
func (w *Writer) Stats() (writes, acked, reconnects int) {
	for _, o := range w.ops {
		if o.acked {
			acked++
		}
	}
	return len(w.ops), acked, w.reconn
}

// Run writes until ctx ends, then acknowledges what it can.
func (w *Writer) Run(ctx context.Context) {
	opts := client.DefaultOptions()
	opts.DialTimeout, opts.IOTimeout = 300*time.Millisecond, 3*time.Second
	opts.Dialer = w.dialer
	var cl *client.Client
	pending := 0 // ops since the last ack
	seq := 0
	live := []int{} // indexes of created, not yet deleted contacts
	for ctx.Err() == nil {
		if cl == nil {
			start := w.rng.IntN(len(w.servers))
			order := append(append([]string{}, w.servers[start:]...), w.servers[:start]...)
			c, err := client.Dial(ctx, order, w.User, opts)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			cl, pending = c, 0
			w.reconn++
		}
		var err error
		if len(live) > 0 && w.rng.IntN(4) == 0 {
			// Half the deletes hit one of the newest contacts: a rewrite in
			// the same second pushes the server's clock ahead of wall time,
			// which is what makes a failover delete risky.
			k := w.rng.IntN(len(live))
			if w.rng.IntN(2) == 0 {
				k = len(live) - 1 - w.rng.IntN(min(5, len(live)))
			}
			idx := live[k]
			live = append(live[:k], live[k+1:]...)
			err = cl.Delete(w.ops[idx].contact)
			w.ops = append(w.ops, op{contact: w.ops[idx].contact})
		} else {
			seq++
			name := fmt.Sprintf("c%06d", seq)
			err = cl.Update(name, fmt.Sprint(seq))
			w.ops = append(w.ops, op{contact: name, phone: fmt.Sprint(seq)})
			live = append(live, len(w.ops)-1)
		}
		pending++
		if err == nil && pending >= 5 {
			if _, err = cl.List(); err == nil {
				for i := len(w.ops) - pending; i < len(w.ops); i++ {
					w.ops[i].acked = true
				}
				pending = 0
				time.Sleep(time.Duration(w.rng.IntN(20)) * time.Millisecond)
			}
		}
		if err != nil {
			_ = cl.Close()
			cl = nil
		}
	}
	if cl != nil {
		if _, err := cl.List(); err == nil {
			for i := len(w.ops) - pending; i < len(w.ops); i++ {
				w.ops[i].acked = true
			}
		}
		_ = cl.Close()
	}
}

// Verdict is what Check found in one writer's book.
type Verdict struct {
	Lost        int      // acknowledged creates missing or changed, and keys never written
	Resurrected int      // acknowledged deletes of acknowledged creates that are back
	LateCreates int      // acknowledged deletes undone by a create whose outcome the client never learned
	Errors      []string // one line per Lost or Resurrected key
	Notes       []string // one line per LateCreates key
	Keys        []string // "user/contact" of every key counted above, for diagnostics
}

// Check compares a converged book with the writer's history: every
// acknowledged create that was not deleted is present with its value,
// every acknowledged delete of an acknowledged create is absent (no
// resurrection), and keys whose last op was not acknowledged may be either
// way. A create whose connection failed before its ListAll came back may
// still take effect later, even after a delete acknowledged elsewhere (it
// may still be in flight, or be stamped by a clock that ran ahead): that
// is the indeterminate outcome any store gives an unacknowledged write, so
// it is counted apart (LateCreates) rather than as a resurrection.
func (w *Writer) Check(book map[string]string) Verdict {
	var v Verdict
	last := map[string]op{}
	createAcked := map[string]bool{}
	for _, o := range w.ops {
		last[o.contact] = o
		if o.phone != "" {
			createAcked[o.contact] = o.acked
		}
	}
	for name, o := range last {
		got, present := book[name]
		if o.acked && (o.phone == "") == present {
			v.Keys = append(v.Keys, w.User+"/"+name)
		}
		switch {
		case o.phone != "" && o.acked && (!present || got != o.phone):
			v.Lost++
			v.Errors = append(v.Errors, fmt.Sprintf("%s/%s: acknowledged %q, found %q (present %v)", w.User, name, o.phone, got, present))
		case o.phone == "" && o.acked && present && createAcked[name]:
			v.Resurrected++
			v.Errors = append(v.Errors, fmt.Sprintf("%s/%s: acknowledged delete of an acknowledged create, found %q", w.User, name, got))
		case o.phone == "" && o.acked && present:
			v.LateCreates++
			v.Notes = append(v.Notes, fmt.Sprintf("%s/%s: acknowledged delete, found %q from a create never acknowledged", w.User, name, got))
		}
	}
	for name := range book {
		if _, ok := last[name]; !ok {
			v.Errors = append(v.Errors, fmt.Sprintf("%s/%s: never written, found", w.User, name))
			v.Lost++
		}
	}
	return v
}

// ExecWriter makes one change at a time through a command line (for
// example contactctl run inside a container the test host cannot reach);
// a change is acknowledged when the command succeeds (put and del return
// only after a ListAll).
type ExecWriter struct {
	w    *Writer
	run  func(args ...string) error
	seq  int
	live []int
}

// NewExecWriter returns a writer for user that runs contactctl arguments
// through run.
func NewExecWriter(user string, run func(args ...string) error) *ExecWriter {
	return &ExecWriter{w: NewWriter(user, nil, 99), run: run}
}

// Step makes one change: a new contact, or (one time in four) the delete
// of an earlier one.
func (x *ExecWriter) Step() {
	w := x.w
	if len(x.live) > 0 && w.rng.IntN(4) == 0 {
		k := w.rng.IntN(len(x.live))
		idx := x.live[k]
		x.live = append(x.live[:k], x.live[k+1:]...)
		name := w.ops[idx].contact
		err := x.run("--user", w.User, "del", name)
		w.ops = append(w.ops, op{contact: name, acked: err == nil})
		return
	}
	x.seq++
	name, phone := fmt.Sprintf("x%06d", x.seq), fmt.Sprint(x.seq)
	err := x.run("--user", w.User, "put", name, phone)
	w.ops = append(w.ops, op{contact: name, phone: phone, acked: err == nil})
	x.live = append(x.live, len(w.ops)-1)
}

// Writer is the history, for Check.
func (x *ExecWriter) Writer() *Writer { return x.w }

// Summary prints a scenario's one-line summary and, when CHAOS_SUMMARY
// names a file, appends it there too: go test shows a passing package's
// output only with -v, and CI prints that file after the tests.
func Summary(line string) {
	fmt.Println(line)
	if path := os.Getenv("CHAOS_SUMMARY"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, line)
			_ = f.Close()
		}
	}
}

// Book lists user's book on the server at addr; ok is false if it does
// not answer.
func Book(addr, user string) (map[string]string, bool) { return BookVia(nil, addr, user) }

// BookVia is Book through dialer.
func BookVia(dialer Dialer, addr, user string) (map[string]string, bool) {
	opts := client.DefaultOptions()
	opts.DialTimeout, opts.IOTimeout = 500*time.Millisecond, 3*time.Second
	opts.Dialer = dialer
	c, err := client.Dial(context.Background(), []string{addr}, user, opts)
	if err != nil {
		return nil, false
	}
	defer c.Close()
	got, err := c.List()
	if err != nil {
		return nil, false
	}
	m := make(map[string]string, len(got))
	for _, g := range got {
		m[g.Name] = g.Phone
	}
	return m, true
}

// Converge waits up to d until every server in addrs lists the same book
// for every user, and returns the books and how long it waited.
func Converge(addrs, users []string, d time.Duration) (map[string]map[string]string, time.Duration, error) {
	return ConvergeVia(nil, addrs, users, d)
}

// ConvergeVia is Converge through dialer.
func ConvergeVia(dialer Dialer, addrs, users []string, d time.Duration) (map[string]map[string]string, time.Duration, error) {
	start := time.Now()
	for {
		books, same := map[string]map[string]string{}, true
		for _, u := range users {
			var first map[string]string
			for i, a := range addrs {
				b, ok := BookVia(dialer, a, u)
				if !ok || (i > 0 && fmt.Sprint(b) != fmt.Sprint(first)) {
					same = false
					break
				}
				first = b
			}
			if !same {
				break
			}
			books[u] = first
		}
		if same {
			return books, time.Since(start), nil
		}
		if time.Since(start) > d {
			return nil, time.Since(start), fmt.Errorf("servers did not list identical books within %v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
