package membership

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// EventKind says what happened to a member.
type EventKind int

const (
	EventJoin   EventKind = iota + 1 // a member appeared or came back
	EventLeave                       // a member left or was declared dead
	EventUpdate                      // a member's meta changed (digest, health, restart)
)

func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventUpdate:
		return "update"
	}
	return "unknown"
}

// Event is one membership change. Events are hints: a consumer that must
// not miss anything also reconciles against Members() periodically, since
// events are dropped when the queue is full rather than block memberlist.
type Event struct {
	Kind   EventKind
	Member Member
}

// Membership is this node's view of the cluster.
type Membership struct {
	cfg    Config
	log    hclog.Logger
	ml     *memberlist.Memberlist
	events chan Event

	metaMu         sync.Mutex
	meta           Meta
	publishPending bool // the last publish timed out: the next one goes out even unchanged

	// members is our own copy of the member list, written in memberlist's
	// event callbacks (which run under its node lock, so the Node is stable
	// there). memberlist's own Members() hands out *Node values it keeps
	// mutating, so reading their fields later would race.
	membersMu sync.RWMutex
	members   map[string]Member
	departed  map[string]Member // dead or left, until they come back (for status pages)

	droppedEvents atomic.Uint64

	offsetsMu sync.Mutex
	offsets   map[string]ClockOffset
	joined    atomic.Bool

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New creates the memberlist node; Start joins the seeds.
func New(cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Membership{cfg: cfg, log: log, events: make(chan Event, cfg.EventQueue), meta: cfg.Meta,
		closing: make(chan struct{}), members: map[string]Member{}, departed: map[string]Member{},
		offsets: map[string]ClockOffset{}}
	mlc, _ := profileConfig(cfg.Profile)
	mlc.Name = cfg.Name
	host, portStr, _ := net.SplitHostPort(cfg.BindAddr)
	if host == "" {
		host = "0.0.0.0"
	} else if net.ParseIP(host) == nil {
		ip, _, err := resolveAdvertise(host, 0) // memberlist binds IPs only: resolve names (contact-server-1)
		if err != nil {
			return nil, fmt.Errorf("membership: gossip host %q: %v", host, err)
		}
		host = ip
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("membership: gossip port %q: %v", portStr, err)
	}
	mlc.BindAddr, mlc.BindPort = host, port
	if cfg.AdvertiseAddr != "" {
		ip, aport, err := resolveAdvertise(cfg.AdvertiseAddr, port)
		if err != nil {
			return nil, err
		}
		mlc.AdvertiseAddr, mlc.AdvertisePort = ip, aport
	}
	mlc.Delegate = (*delegate)(m)
	mlc.Events = (*eventDelegate)(m)
	mlc.Ping = (*pingDelegate)(m)
	mlc.LogOutput = nil
	mlc.Logger = log.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("membership: gossip keyring: %w", err)
		}
		mlc.Keyring = kr
		mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	}
	mlc.Label = cfg.Label
	// A member restarted with a new address (a container) may take its name
	// back once the old incarnation has been dead this long.
	mlc.DeadNodeReclaimTime = 5 * time.Second
	if cfg.Tune != nil {
		cfg.Tune(mlc)
	}
	ml, err := memberlist.Create(mlc)
	if err != nil && cfg.AdvertiseAddr == "" && strings.Contains(err.Error(), "no private IP address") {
		// A machine with only public or test addresses: advertise the first
		// interface address (or loopback) rather than refusing to start.
		mlc.AdvertiseAddr, mlc.AdvertisePort = fallbackIP(), port
		log.Warn("no private IP to advertise; using an interface address (set --advertise to choose)", "advertise", mlc.AdvertiseAddr)
		ml, err = memberlist.Create(mlc)
	}
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	return m, nil
}

func fallbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

func resolveAdvertise(addr string, defPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host, portStr = addr, strconv.Itoa(defPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("membership: advertise port %q: %v", portStr, err)
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), port, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", 0, fmt.Errorf("membership: cannot resolve advertise host %q: %v", host, err)
	}
	return ips[0].String(), port, nil
}

// Start joins the seeds in the background, retrying with backoff until one
// answers, then re-joins them every RejoinInterval. It returns at once.
func (m *Membership) Start() {
	m.wg.Add(1)
	go m.joinLoop()
}

func (m *Membership) joinLoop() {
	defer m.wg.Done()
	if len(m.cfg.Seeds) == 0 {
		m.joined.Store(true)
		return
	}
	backoff := 100 * time.Millisecond
	for !m.joined.Load() {
		n, err := m.ml.Join(m.cfg.Seeds)
		if n > 0 {
			m.joined.Store(true)
			m.log.Info("joined cluster", "seeds", m.cfg.Seeds, "contacted", n, "members", m.ml.NumMembers())
			break
		}
		m.log.Warn("join failed, retrying", "seeds", m.cfg.Seeds, "error", err, "retry_in", backoff)
		select {
		case <-m.closing:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.cfg.JoinBackoffMax)
	}
	t := time.NewTicker(m.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-m.closing:
			return
		case <-t.C:
			if n, err := m.ml.Join(m.cfg.Seeds); n == 0 {
				m.log.Debug("periodic rejoin reached no seed", "error", err)
			}
		}
	}
}

// Joined reports whether a seed has answered (always true without seeds).
func (m *Membership) Joined() bool { return m.joined.Load() }

// LocalIP is the IP other members reach this node at.
func (m *Membership) LocalIP() net.IP { return m.ml.LocalNode().Addr }

// Members returns every member memberlist does not consider dead or left,
// this node included.
func (m *Membership) Members() []Member {
	m.membersMu.RLock()
	defer m.membersMu.RUnlock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem)
	}
	return out
}

// departedKept is how long a departed member stays on status pages.
const departedKept = time.Hour

// Departed returns the members that died or left within the last hour and
// have not come back, with State "dead" or "left" and Since set to when
// that was seen. Older ones are forgotten (scaled-in replicas have fresh
// names every time, so the list must not grow for ever).
func (m *Membership) Departed() []Member {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	out := make([]Member, 0, len(m.departed))
	for name, mem := range m.departed {
		if time.Since(mem.Since) > departedKept {
			delete(m.departed, name)
			continue
		}
		out = append(out, mem)
	}
	return out
}

// Lookup returns the live member called name.
func (m *Membership) Lookup(name string) (Member, bool) {
	m.membersMu.RLock()
	defer m.membersMu.RUnlock()
	mem, ok := m.members[name]
	return mem, ok
}

// HealthScore is memberlist's awareness score (0 is healthy).
func (m *Membership) HealthScore() int { return m.ml.GetHealthScore() }

// DroppedEvents counts events dropped because the queue was full.
func (m *Membership) DroppedEvents() uint64 { return m.droppedEvents.Load() }

// Events delivers membership changes of other members.
func (m *Membership) Events() <-chan Event { return m.events }

// LocalMeta returns the meta this node publishes.
func (m *Membership) LocalMeta() Meta {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	return m.meta
}

// Publish republishes what changed of this node's meta (digest, cutoff,
// mark, health). It may block up to timeout (at least minPublishWait)
// while memberlist broadcasts: never call it from a callback. A publish
// that timed out is made again by the next call, changed or not.
func (m *Membership) Publish(p Published, timeout time.Duration) error {
	m.metaMu.Lock()
	changed := m.meta.Published != p || m.publishPending
	m.meta.Published = p
	m.metaMu.Unlock()
	if !changed {
		return nil
	}
	// memberlist's UpdateNode waits for ever when given 0, and it drops its
	// alive message without notice when the incarnation it drew is already
	// behind: a refutation took a higher one in between (a restarted member
	// answering the cluster's "dead" or "suspect" about its former life),
	// or after Leave. Unbounded, such a publish never returned (a restarted
	// member of 32 stuck "syncing" in initialSync, holding the meta lock).
	err := m.ml.UpdateNode(max(timeout, minPublishWait))
	m.metaMu.Lock()
	m.publishPending = err != nil
	m.metaMu.Unlock()
	return err
}

// minPublishWait bounds a publish asked not to wait (timeout 0).
const minPublishWait = 10 * time.Millisecond

// Leave announces a graceful departure and waits up to timeout for it to
// spread.
func (m *Membership) Leave(timeout time.Duration) error { return m.ml.Leave(timeout) }

// Shutdown stops gossip without announcing anything (peers will detect
// the failure). It is idempotent.
func (m *Membership) Shutdown() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closing)
		m.wg.Wait()
		err = m.ml.Shutdown()
	})
	return err
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

// toMember copies what it needs: memberlist reuses its Node structs.
func toMember(n *memberlist.Node) Member {
	meta, _ := decodeMeta(n.Meta) // a malformed meta leaves a zero Meta: port 0 is never dialed
	ip := append(net.IP(nil), n.Addr...)
	return Member{Name: n.Name, GossipAddr: net.JoinHostPort(ip.String(), strconv.Itoa(int(n.Port))),
		IP: ip, State: stateName(n.State), Meta: meta}
}

// delegate serves this node's meta to memberlist.
type delegate Membership

func (d *delegate) NodeMeta(limit int) []byte {
	m := (*Membership)(d)
	b := m.LocalMeta().encode()
	if len(b) > limit {
		return b[:0]
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}

// eventDelegate turns memberlist callbacks into queued Events. It never
// blocks and never calls back into memberlist (NotifyJoin fires for the
// local node inside Create, before New has returned).
type eventDelegate Membership

func (e *eventDelegate) push(kind EventKind, n *memberlist.Node) {
	m := (*Membership)(e)
	ev := Event{Kind: kind, Member: toMember(n)}
	m.membersMu.Lock()
	if kind == EventLeave {
		// The Node memberlist hands to callbacks carries a stale State (the
		// live one is internal), so say "left" when the member had
		// announced it was leaving, and "dead" otherwise.
		ev.Member.State = "dead"
		if prev, ok := m.members[n.Name]; ok && prev.Meta.Health == HealthLeaving {
			ev.Member.State = "left"
		}
		delete(m.members, n.Name)
		ev.Member.Since = time.Now()
		m.departed[n.Name] = ev.Member
	} else {
		delete(m.departed, n.Name)
		ev.Member.State = "alive" // join and update callbacks fire for live nodes only
		m.members[n.Name] = ev.Member
	}
	m.membersMu.Unlock()
	if n.Name == m.cfg.Name {
		return
	}
	select {
	case m.events <- ev:
	default:
		m.droppedEvents.Add(1)
	}
}

func (e *eventDelegate) NotifyJoin(n *memberlist.Node)   { e.push(EventJoin, n) }
func (e *eventDelegate) NotifyLeave(n *memberlist.Node)  { e.push(EventLeave, n) }
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.push(EventUpdate, n) }
