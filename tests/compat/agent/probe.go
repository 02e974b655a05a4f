package agent

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ProbeUDP tells whether UDP works where the agent runs: it binds a socket to addr (port 0),
// sends a datagram to that socket and waits a little for it to arrive.
func ProbeUDP(addr netip.Addr) error {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		return fmt.Errorf("bind UDP %s: %w", addr, err)
	}
	defer c.Close()
	msg := []byte("ztnc-compat UDP probe")
	if _, err := c.WriteTo(msg, c.LocalAddr()); err != nil {
		return fmt.Errorf("send UDP to %s: %w", c.LocalAddr(), err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		return fmt.Errorf("receive UDP on %s: %w", c.LocalAddr(), err)
	}
	if !bytes.Equal(buf[:n], msg) {
		return fmt.Errorf("UDP on %s: received %q, sent %q", c.LocalAddr(), buf[:n], msg)
	}
	return nil
}
