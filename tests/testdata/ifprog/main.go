// Command ifprog prints the network interfaces a Go program sees (net.Interfaces, which reads
// rtnetlink link and address dumps), one line each: "NAME index=I mtu=M up=B ADDR/LEN...".
// Built with CGO_ENABLED=0: statically linked, its own netlink code, no glibc.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	ifs, err := net.Interfaces()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ifprog:", err)
		os.Exit(1)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ifprog:", err)
			os.Exit(1)
		}
		var as []string
		for _, a := range addrs {
			as = append(as, a.String())
		}
		fmt.Printf("%s index=%d mtu=%d up=%v mac=%s %s\n", ifc.Name, ifc.Index, ifc.MTU,
			ifc.Flags&net.FlagUp != 0, ifc.HardwareAddr, strings.Join(as, " "))
	}
}
