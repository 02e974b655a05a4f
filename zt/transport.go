package zt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/ztnc/ztnc/zt/wire"
)

// DefaultPort is ZeroTier's UDP port.
const DefaultPort = 9993

// PortAny, as Config.Port, binds any free port.
const PortAny = -1

// socket is one bound UDP socket: the "local socket" half of a physical path. A node normally
// has one dual-stack socket on the wildcard address; with Config.Bind, one per address.
type socket struct {
	conn  *net.UDPConn
	raw   syscall.RawConn
	local netip.AddrPort   // as bound (the wildcard address unless Bind was given)
	addrs []netip.AddrPort // where peers may reach it (see localAddresses)
	gro   bool             // receives coalesced datagrams (UDP_GRO)
	noGSO atomic.Bool      // sends without segmentation offload
}

// listen binds a socket on every address of bind (the dual-stack wildcard if none) on one
// common port. port > 0 must be free; 0 tries DefaultPort, then last (the port used before),
// then a random one; PortAny goes straight to a random one.
func listen(bind []netip.Addr, port, last int) ([]*socket, error) {
	if len(bind) == 0 {
		bind = []netip.Addr{{}}
	}
	var candidates []int
	switch {
	case port > 0:
		candidates = []int{port}
	case port == 0:
		candidates = []int{DefaultPort}
		if last > 0 && last != DefaultPort {
			candidates = append(candidates, last)
		}
		candidates = append(candidates, 0, 0, 0)
	default:
		candidates = []int{0, 0, 0}
	}
	var firstErr error
	for _, p := range candidates {
		socks, err := listenAll(bind, p)
		if err == nil {
			return socks, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, firstErr
}

// listenAll binds every address on port (0: the kernel picks one for the first address and
// the others follow it).
func listenAll(bind []netip.Addr, port int) ([]*socket, error) {
	var socks []*socket
	fail := func(err error) ([]*socket, error) {
		for _, s := range socks {
			s.conn.Close()
		}
		return nil, err
	}
	for _, a := range bind {
		network, laddr := "udp", &net.UDPAddr{Port: port}
		switch {
		case a.Is4():
			network, laddr.IP = "udp4", a.AsSlice()
		case a.Is6() && !a.IsUnspecified(): // "::" stays dual-stack, like no address
			network, laddr.IP, laddr.Zone = "udp6", a.AsSlice(), a.Zone()
		}
		c, err := net.ListenUDP(network, laddr)
		if err != nil {
			return fail(fmt.Errorf("listen on %s: %w", net.JoinHostPort(addrString(a), strconv.Itoa(port)), err))
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		local := c.LocalAddr().(*net.UDPAddr).AddrPort()
		la := netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
		raw, err := c.SyscallConn()
		if err != nil {
			c.Close()
			return fail(err)
		}
		s := &socket{conn: c, raw: raw, local: la, addrs: interfaceAddrs(la)}
		s.enableOffloads()
		socks = append(socks, s)
		port = int(local.Port())
	}
	return socks, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// writePacket sends armored packet p, in total datagrams of at most mtu bytes (total from
// wire.FragmentCount), with one system call.
func (s *socket) writePacket(p wire.Packet, mtu, total int, to netip.AddrPort) error {
	if total == 1 {
		return s.writeTo(p, to)
	}
	b := getTxBatch(s)
	defer b.release()
	if err := b.add(p, mtu, total, to); err != nil {
		return err
	}
	return b.flush()
}

// canReach reports whether the socket can send to an address of to's family.
func (s *socket) canReach(to netip.Addr) bool {
	la := s.local.Addr()
	switch {
	case la.IsUnspecified() && la.Is6(): // dual stack
		return true
	case la.Is4():
		return to.Is4()
	default:
		return to.Is6() && !to.Is4In6()
	}
}

// localAddresses lists the addresses a peer could reach this socket at: the bound address, or
// for the wildcard every interface address at the time the socket was bound (read then, as the
// socket may live in another network namespace than the threads that ask later).
func (s *socket) localAddresses() []netip.AddrPort { return s.addrs }

func interfaceAddrs(local netip.AddrPort) []netip.AddrPort {
	la := local.Addr()
	if la.IsValid() && !la.IsUnspecified() {
		return []netip.AddrPort{local}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range addrs {
		p, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(p.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if la.Is4() && !ip.Is4() {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, local.Port()))
	}
	return out
}
