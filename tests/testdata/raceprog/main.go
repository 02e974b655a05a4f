// Command raceprog races a connect's address: it connects N times to 127.0.0.1:GOOD while
// another thread keeps rewriting the address in memory, switching the port between GOOD and
// BAD. It prints how many connects succeeded and how many failed. A supervisor that checked
// the address and then let the kernel read it again from memory would let some connects
// through to BAD.
//
//	raceprog GOOD BAD N
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"
)

func main() {
	good, _ := strconv.Atoi(os.Args[1])
	bad, _ := strconv.Atoi(os.Args[2])
	n, _ := strconv.Atoi(os.Args[3])
	// struct sockaddr_in as four 32-bit words: family and port (network order) in the first.
	word := func(port int) uint32 {
		return uint32(syscall.AF_INET) | uint32(port>>8|(port&0xff)<<8)<<16
	}
	var sa [4]uint32
	sa[0] = word(good)
	sa[1] = 0x0100007f // 127.0.0.1
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 64 {
				atomic.StoreUint32(&sa[0], word(bad))
				atomic.StoreUint32(&sa[0], word(good))
			}
		}
	}()
	ok, failed := 0, 0
	for range n {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "socket:", err)
			os.Exit(1)
		}
		_, _, e := syscall.Syscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), 16)
		if e == 0 {
			ok++
			syscall.Write(fd, []byte("race"))
		} else {
			failed++
		}
		syscall.Close(fd)
	}
	close(stop)
	fmt.Printf("connected %d failed %d\n", ok, failed)
}
