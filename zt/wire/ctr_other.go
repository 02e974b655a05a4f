//go:build !amd64 || purego

package wire

// ctrSchedule is empty where there is no assembly CTR: xorCTR takes crypto/cipher's.
type ctrSchedule struct{}

func newCTRSchedule([]byte) ctrSchedule { return ctrSchedule{} }

func (*ctrSchedule) xor(*[16]byte, []byte) bool { return false }
