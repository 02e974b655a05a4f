package main

// Published ports (--publish/-p [HOSTADDR:]HOSTPORT:VPORT[/tcp|/udp]): ztnc-run listens on
// the host and forwards each connection or datagram to the program's listener on the virtual
// network, like `docker run -p`. The forwarded connection comes from the stack itself: it is
// made to the network's first IPv4 address (else its IPv6 address) and the program sees that
// same address, with an ephemeral port, as the peer — as a program sees a connection from
// another process on its own host. Listeners bound to 127.0.0.1 or ::1 are not reached.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/netstack"
)

// publishSpec is one --publish value.
type publishSpec struct {
	host  netip.AddrPort // unspecified address: every address of the host
	any   bool           // no HOSTADDR given: listen on all addresses, IPv4 and IPv6
	vport uint16
	udp   bool
}

func (p publishSpec) proto() string {
	if p.udp {
		return "udp"
	}
	return "tcp"
}

// hostAddr is where the host side listens.
func (p publishSpec) hostAddr() string {
	if p.any {
		return ":" + strconv.Itoa(int(p.host.Port()))
	}
	return p.host.String()
}

func (p publishSpec) String() string {
	return fmt.Sprintf("%s->%d/%s", p.hostAddr(), p.vport, p.proto())
}

// parsePublish parses [HOSTADDR:]HOSTPORT:VPORT[/tcp|/udp]; IPv6 host addresses go in
// brackets.
func parsePublish(v string) (publishSpec, error) {
	var p publishSpec
	bad := func(why string) (publishSpec, error) {
		return p, fmt.Errorf("--publish %q: %s (want [HOSTADDR:]HOSTPORT:VPORT[/tcp|/udp], like 8080:80 or 127.0.0.1:5353:53/udp)", v, why)
	}
	s := strings.TrimSpace(v)
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		switch strings.ToLower(s[i+1:]) {
		case "tcp":
		case "udp":
			p.udp = true
		default:
			return bad("the protocol is tcp or udp")
		}
		s = s[:i]
	}
	var addr string
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return bad("an IPv6 address in brackets must be followed by :HOSTPORT")
		}
		addr, s = s[1:end], s[end+2:]
	}
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 3 && addr == "":
		addr, parts = parts[0], parts[1:]
	case len(parts) < 2:
		return bad("give the host port and the virtual port")
	case len(parts) != 2:
		return bad("put IPv6 host addresses in brackets")
	}
	port := func(s string) (uint16, bool) {
		n, err := strconv.ParseUint(s, 10, 16)
		return uint16(n), err == nil && n > 0
	}
	hp, ok1 := port(parts[0])
	vp, ok2 := port(parts[1])
	if !ok1 || !ok2 {
		return bad("ports are 1 to 65535")
	}
	p.vport = vp
	if addr == "" {
		p.any = true
		p.host = netip.AddrPortFrom(netip.IPv6Unspecified(), hp)
		return p, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return bad("the host address is an IP address")
	}
	p.host = netip.AddrPortFrom(a.Unmap(), hp)
	return p, nil
}

// Limits and timeouts of forwarding.
const (
	// maxForwards bounds the connections or UDP flows of one published port, so that a flood
	// cannot exhaust ztnc-run's file descriptors; beyond it new ones are refused and counted.
	maxForwards = 1024
	// udpIdleTimeout ends a UDP flow nothing was sent on either way for this long (docker's
	// proxy uses 90 s).
	udpIdleTimeout = 90 * time.Second
	// connectTimeout bounds the connection to the program's listener (made to ourselves).
	connectTimeout = 10 * time.Second
)

// publisher forwards one published port.
type publisher struct {
	spec  publishSpec
	stack func() *netstack.Stack // the stack of the network the program listens on, or nil
	log   *slog.Logger

	ln   net.Listener
	pc   *net.UDPConn
	idle time.Duration // UDP flows

	total, bytesIn, bytesOut atomic.Uint64
	active                   atomic.Int64
	drops                    sync.Map // reason → *atomic.Uint64

	mu    sync.Mutex
	flows map[netip.AddrPort]*udpFlow
	conns map[*net.TCPConn]bool // host connections being forwarded
	done  chan struct{}
	wg    sync.WaitGroup
}

// startPublisher listens on the host side at once (so that a taken port fails the start) and
// forwards what arrives; UDP flows end after idle without a datagram.
func startPublisher(log *slog.Logger, spec publishSpec, stack func() *netstack.Stack, idle time.Duration) (*publisher, error) {
	p := &publisher{spec: spec, stack: stack, log: log, idle: idle, done: make(chan struct{}),
		flows: map[netip.AddrPort]*udpFlow{}, conns: map[*net.TCPConn]bool{}}
	if spec.udp {
		pc, err := net.ListenPacket("udp", spec.hostAddr())
		if err != nil {
			return nil, fmt.Errorf("--publish %s: %w", spec, err)
		}
		p.pc = pc.(*net.UDPConn)
		p.wg.Add(2)
		go p.serveUDP()
		go p.expireFlows()
	} else {
		ln, err := net.Listen("tcp", spec.hostAddr())
		if err != nil {
			return nil, fmt.Errorf("--publish %s: %w", spec, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.serveTCP()
	}
	log.Info("published port", "host", p.localAddr(), "vport", spec.vport, "proto", spec.proto())
	return p, nil
}

func (p *publisher) localAddr() string {
	if p.pc != nil {
		return p.pc.LocalAddr().String()
	}
	return p.ln.Addr().String()
}

// close stops listening and ends every forwarded connection and flow.
func (p *publisher) close() {
	p.mu.Lock()
	close(p.done)
	p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	if p.pc != nil {
		p.pc.Close()
	}
	p.mu.Lock()
	for _, f := range p.flows {
		f.close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *publisher) drop(reason string) {
	v, _ := p.drops.LoadOrStore(reason, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// targets are the program's addresses to forward to: the network's first IPv4 address, then
// its first IPv6 address.
func targets(st *netstack.Stack) []netip.Addr {
	var v4, v6 netip.Addr
	for _, p := range st.Addresses() {
		switch a := p.Addr(); {
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6() && !a.Is4In6() && !v6.IsValid():
			v6 = a
		}
	}
	var out []netip.Addr
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

func (p *publisher) serveTCP() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				p.drop("accept")
				time.Sleep(50 * time.Millisecond)
				continue
			}
			p.log.Warn("published port: accept", "host", p.localAddr(), "err", err)
			return
		}
		if p.active.Load() >= maxForwards {
			p.drop("limit")
			c.Close()
			continue
		}
		host := c.(*net.TCPConn)
		p.mu.Lock()
		select {
		case <-p.done:
			p.mu.Unlock()
			host.Close()
			return
		default:
		}
		p.conns[host] = true
		p.active.Add(1)
		p.total.Add(1)
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			defer p.active.Add(-1)
			p.forwardTCP(host)
			p.mu.Lock()
			delete(p.conns, host)
			p.mu.Unlock()
		}()
	}
}

// forwardTCP connects to the program's listener and proxies until both directions have
// ended. The stack's side is the proxy of netstack's Splice, on one end of a socketpair; the
// other end and the host connection are copied by the kernel (splice(2)) both ways, with
// half-close each way and backpressure from the socket buffers.
func (p *publisher) forwardTCP(host *net.TCPConn) {
	defer host.Close()
	st := p.stack()
	if st == nil {
		p.drop("no-network")
		return
	}
	ep, err := p.dialVirtual(st)
	if err != nil {
		p.log.Debug("published port: no listener", "vport", p.spec.vport, "err", err)
		p.drop("refused")
		host.SetLinger(0) // reset, as a closed port would
		return
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		ep.Abort()
		p.drop("socketpair")
		return
	}
	if err := ep.Splice(os.NewFile(uintptr(fds[1]), "publish-splice")); err != nil {
		unix.Close(fds[0])
		ep.Abort()
		p.drop("splice")
		return
	}
	f := os.NewFile(uintptr(fds[0]), "publish")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.drop("socketpair")
		return
	}
	virt := c.(*net.UnixConn)
	defer virt.Close()
	p.log.Debug("published port: connection", "from", host.RemoteAddr().String(), "vport", p.spec.vport)

	errc := make(chan error, 2)
	go func() {
		n, err := io.Copy(virt, host) // host → program
		p.bytesIn.Add(uint64(n))
		if err == nil {
			err = virt.CloseWrite() // FIN to the program
		}
		errc <- err
	}()
	go func() {
		n, err := io.Copy(host, virt) // program → host
		p.bytesOut.Add(uint64(n))
		if err == nil {
			err = host.CloseWrite()
		}
		errc <- err
	}()
	reset := false
	for range 2 {
		if err := <-errc; err != nil && !reset {
			// A reset on either side: reset the other and end both directions.
			reset = true
			host.SetLinger(0)
			host.Close()
			virt.Close()
			p.drop("reset")
		}
	}
}

// dialVirtual connects a stack endpoint to the program's listener at the stack's own
// address: IPv4 first, IPv6 when that is refused.
func (p *publisher) dialVirtual(st *netstack.Stack) (*netstack.TCPEndpoint, error) {
	err := errors.New("the network has no address yet")
	for _, a := range targets(st) {
		var ep *netstack.TCPEndpoint
		if ep, err = connectEndpoint(st, netip.AddrPortFrom(a, p.spec.vport)); err == nil {
			return ep, nil
		}
	}
	return nil, err
}

// connectEndpoint makes an established TCP endpoint to remote.
func connectEndpoint(st *netstack.Stack, remote netip.AddrPort) (*netstack.TCPEndpoint, error) {
	ep, err := st.NewTCP(remote.Addr().Is6())
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{}, 1)
	cancel := ep.Notify(netstack.EventOut|netstack.EventErr|netstack.EventHUp, func(netstack.Events) {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	defer cancel()
	if err := ep.Connect(remote); err != nil && err != syscall.EINPROGRESS {
		ep.Close()
		return nil, err
	}
	timeout := time.NewTimer(connectTimeout)
	defer timeout.Stop()
	for ep.Readiness(netstack.EventOut|netstack.EventErr|netstack.EventHUp) == 0 {
		select {
		case <-ready:
		case <-timeout.C:
			ep.Abort()
			return nil, syscall.ETIMEDOUT
		}
	}
	if e := ep.SoError(); e != 0 {
		ep.Close()
		return nil, e
	}
	return ep, nil
}

// udpFlow is the datagrams of one host client: a UDP endpoint of the stack connected to the
// program's socket.
type udpFlow struct {
	client netip.AddrPort
	ep     *netstack.DatagramEndpoint
	last   atomic.Int64 // when a datagram last passed either way (UnixNano)
	wake   chan struct{}
	cancel func()
	done   chan struct{}
	once   sync.Once
}

func (f *udpFlow) touch() { f.last.Store(time.Now().UnixNano()) }

func (f *udpFlow) close() {
	f.once.Do(func() {
		close(f.done)
		f.cancel()
		f.ep.Close()
	})
}

func (p *publisher) serveUDP() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, client, err := p.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			p.log.Warn("published port: receive", "host", p.localAddr(), "err", err)
			return
		}
		f := p.flow(client)
		if f == nil {
			continue
		}
		f.touch()
		if _, err := f.ep.WriteTo(buf[:n], netip.AddrPort{}); err != nil {
			p.drop("send")
			continue
		}
		p.bytesIn.Add(uint64(n))
	}
}

// flow returns the client's flow, making it on its first datagram.
func (p *publisher) flow(client netip.AddrPort) *udpFlow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.flows[client]; f != nil {
		return f
	}
	if len(p.flows) >= maxForwards {
		p.drop("limit")
		return nil
	}
	st := p.stack()
	if st == nil {
		p.drop("no-network")
		return nil
	}
	tg := targets(st)
	if len(tg) == 0 {
		p.drop("no-network")
		return nil
	}
	remote := netip.AddrPortFrom(tg[0], p.spec.vport)
	ep, err := st.NewUDP(remote.Addr().Is6())
	if err == nil {
		if err = ep.Connect(remote); err != nil {
			ep.Close()
		}
	}
	if err != nil {
		p.log.Debug("published port: flow", "client", client, "err", err)
		p.drop("endpoint")
		return nil
	}
	f := &udpFlow{client: client, ep: ep, wake: make(chan struct{}, 1), done: make(chan struct{})}
	f.cancel = ep.Notify(netstack.EventIn|netstack.EventErr, func(netstack.Events) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	})
	f.touch()
	p.flows[client] = f
	p.total.Add(1)
	p.active.Add(1)
	p.wg.Add(1)
	go p.replies(f)
	p.log.Debug("published port: flow", "client", client, "vport", p.spec.vport)
	return f
}

// replies sends what the program answers on a flow back to its client.
func (p *publisher) replies(f *udpFlow) {
	defer p.wg.Done()
	defer p.active.Add(-1)
	buf := make([]byte, 65536)
	for {
		n, _, _, err := f.ep.ReadFrom(buf, false)
		switch {
		case err == nil:
			f.touch()
			if _, err := p.pc.WriteToUDPAddrPort(buf[:n], f.client); err != nil {
				p.drop("reply")
			} else {
				p.bytesOut.Add(uint64(n))
			}
			continue
		case err == syscall.EAGAIN:
		case err == syscall.ECONNREFUSED:
			// Nothing listens on the port (ICMP port unreachable); the error is consumed.
			p.drop("refused")
			continue
		default:
			select {
			case <-f.done:
				return
			default:
			}
			p.drop("receive")
		}
		select {
		case <-f.wake:
		case <-f.done:
			return
		}
	}
}

// expireFlows ends flows idle for longer than p.idle.
func (p *publisher) expireFlows() {
	defer p.wg.Done()
	t := time.NewTicker(max(p.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			p.mu.Lock()
			for c, f := range p.flows {
				if now.Sub(time.Unix(0, f.last.Load())) > p.idle {
					delete(p.flows, c)
					f.close()
				}
			}
			p.mu.Unlock()
		}
	}
}

// flowCount is the number of UDP flows open.
func (p *publisher) flowCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.flows)
}

// publishedJSON is a published port in status.
type publishedJSON struct {
	Proto     string            `json:"proto"`
	Host      string            `json:"host"`
	VPort     int               `json:"vport"`
	Total     uint64            `json:"forwarded"`
	Active    int64             `json:"active"`
	BytesIn   uint64            `json:"bytesIn"`
	BytesOut  uint64            `json:"bytesOut"`
	Drops     map[string]uint64 `json:"drops"`
	IdleLimit float64           `json:"udpIdleTimeoutSeconds,omitempty"`
}

func (p *publisher) json() publishedJSON {
	j := publishedJSON{Proto: p.spec.proto(), Host: p.localAddr(), VPort: int(p.spec.vport), Total: p.total.Load(),
		Active: p.active.Load(), BytesIn: p.bytesIn.Load(), BytesOut: p.bytesOut.Load(), Drops: map[string]uint64{}}
	if p.spec.udp {
		j.IdleLimit = p.idle.Seconds()
	}
	p.drops.Range(func(k, v any) bool {
		j.Drops[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return j
}

func publishedOf(pubs []*publisher) []publishedJSON {
	out := []publishedJSON{}
	for _, p := range pubs {
		out = append(out, p.json())
	}
	return out
}

// publishMetrics writes the published ports' counters.
func (w *promWriter) publishMetrics(pubs []*publisher) {
	label := func(j publishedJSON) []string {
		return []string{"proto", j.Proto, "host", j.Host, "vport", strconv.Itoa(j.VPort)}
	}
	var js []publishedJSON
	for _, p := range pubs {
		js = append(js, p.json())
	}
	w.family("ztnc_published_forwarded_total", "counter", "Connections (TCP) or flows (UDP) forwarded by published ports.")
	for _, j := range js {
		w.sample("ztnc_published_forwarded_total", float64(j.Total), label(j)...)
	}
	w.family("ztnc_published_active", "gauge", "Connections or flows of published ports open.")
	for _, j := range js {
		w.sample("ztnc_published_active", float64(j.Active), label(j)...)
	}
	w.family("ztnc_published_bytes_total", "counter", "Bytes forwarded by published ports (in: toward the program).")
	for _, j := range js {
		w.sample("ztnc_published_bytes_total", float64(j.BytesIn), append(label(j), "direction", "in")...)
		w.sample("ztnc_published_bytes_total", float64(j.BytesOut), append(label(j), "direction", "out")...)
	}
	w.family("ztnc_published_drops_total", "counter", "Connections and datagrams published ports dropped, by reason.")
	for _, j := range js {
		w.counterMap("ztnc_published_drops_total", j.Drops, "reason", label(j)...)
	}
}
