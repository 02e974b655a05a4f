package notify

import (
	"bytes"
	"os"
	"strconv"
)

// SignalPending reports whether thread tid has a signal pending that it does not block: the
// signal a native blocking call would be interrupted by. With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
// the kernel holds such signals off while the supervisor answers, so a supervisor that waits on
// a thread's behalf polls this and answers ERESTARTSYS when it turns true.
func SignalPending(tid uint32) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return false, err
	}
	var pnd, shd, blk uint64
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "SigPnd":
			dst = &pnd
		case "ShdPnd":
			dst = &shd
		case "SigBlk":
			dst = &blk
		default:
			continue
		}
		*dst, err = strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
		if err != nil {
			return false, err
		}
	}
	return (pnd|shd)&^blk != 0, nil
}
