package supervisor

import (
	"bytes"
	"strconv"

	"golang.org/x/sys/unix"
)

// readProc reads a /proc file into buf (grown as needed) with plain system calls: os.ReadFile
// would also try to register the file with Go's poller and read twice more. Swaps and fd
// checks read small fdinfo files on the connection path.
func readProc(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, max(len(buf), 512))...)
		}
		k, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k == 0 {
			return buf[:n], nil
		}
		n += k
	}
}

// procPath is /proc/<tid>/<rest>.
func procPath(tid uint32, rest string) string {
	return "/proc/" + strconv.FormatUint(uint64(tid), 10) + "/" + rest
}

// fdinfoField returns the value of "name:\t..." in an fdinfo file's text.
func fdinfoField(b []byte, name string) ([]byte, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > len(name) && string(line[:len(name)]) == name && line[len(name)] == ':' {
			return bytes.TrimSpace(line[len(name)+1:]), true
		}
	}
	return nil, false
}
