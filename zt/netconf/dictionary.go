package netconf

import (
	"bytes"
	"fmt"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Dictionary is ZeroTier's key=value text format: entries separated by LF, values escaped so
// that they never contain NUL, CR, LF or '='. Entries keep their order; lookups return the
// first entry with the key, as zerotier-one's do.
type Dictionary struct {
	Entries []Entry
}

// Entry is one key and its unescaped value.
type Entry struct {
	Key   string
	Value []byte
}

// ParseDictionary reads the text form. Like zerotier-one it stops at a NUL byte, treats CR as
// a line end too, and ignores lines without '='.
func ParseDictionary(b []byte) *Dictionary {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	d := &Dictionary{}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			continue
		}
		d.Entries = append(d.Entries, Entry{Key: string(k), Value: unescape(v)})
	}
	return d
}

func unescape(v []byte) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i == len(v) {
			break
		}
		switch c = v[i]; c {
		case 'r':
			c = '\r'
		case 'n':
			c = '\n'
		case '0':
			c = 0
		case 'e':
			c = '='
		}
		out = append(out, c)
	}
	return out
}

// Append appends the text form (no trailing LF or NUL).
func (d *Dictionary) Append(b []byte) []byte {
	for i, e := range d.Entries {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, e.Key...)
		b = append(b, '=')
		for _, c := range e.Value {
			switch c {
			case 0:
				b = append(b, '\\', '0')
			case '\r':
				b = append(b, '\\', 'r')
			case '\n':
				b = append(b, '\\', 'n')
			case '\\':
				b = append(b, '\\', '\\')
			case '=':
				b = append(b, '\\', 'e')
			default:
				b = append(b, c)
			}
		}
	}
	return b
}

// Bytes is the text form.
func (d *Dictionary) Bytes() []byte { return d.Append(nil) }

// Get returns the value of the first entry with key.
func (d *Dictionary) Get(key string) ([]byte, bool) {
	for _, e := range d.Entries {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// String returns the value of key as text ("" if absent).
func (d *Dictionary) String(key string) string {
	v, _ := d.Get(key)
	return string(v)
}

// Uint returns the value of key read as hex the way zerotier-one does (strtoull base 16: an
// optional 0x, then as many hex digits as there are); dfl if the key is absent or empty.
func (d *Dictionary) Uint(key string, dfl uint64) uint64 {
	v, ok := d.Get(key)
	if !ok || len(v) == 0 {
		return dfl
	}
	u, _ := parseHexPrefix(v)
	return u
}

// Int is Uint for signed values written with a leading '-'.
func (d *Dictionary) Int(key string, dfl int64) int64 {
	v, ok := d.Get(key)
	if !ok || len(v) == 0 {
		return dfl
	}
	if v[0] == '-' {
		u, _ := parseHexPrefix(v[1:])
		return -int64(u)
	}
	u, _ := parseHexPrefix(v)
	return int64(u)
}

// Bool returns whether key's value starts with 1, t or T; dfl if the key is absent.
func (d *Dictionary) Bool(key string, dfl bool) bool {
	v, ok := d.Get(key)
	if !ok {
		return dfl
	}
	return len(v) > 0 && (v[0] == '1' || v[0] == 't' || v[0] == 'T')
}

func parseHexPrefix(v []byte) (uint64, int) {
	if len(v) >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') {
		v = v[2:]
	}
	var u uint64
	n := 0
	for ; n < len(v); n++ {
		c := v[n]
		var x byte
		switch {
		case c >= '0' && c <= '9':
			x = c - '0'
		case c >= 'a' && c <= 'f':
			x = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			x = c - 'A' + 10
		default:
			return u, n
		}
		if u>>60 != 0 {
			u = ^uint64(0) // saturate like strtoull
			continue
		}
		u = u<<4 | uint64(x)
	}
	return u, n
}

// Add appends an entry (keys are not checked for duplicates, as in zerotier-one).
func (d *Dictionary) Add(key string, value []byte) {
	d.Entries = append(d.Entries, Entry{Key: key, Value: value})
}

// AddString appends a text entry.
func (d *Dictionary) AddString(key, value string) { d.Add(key, []byte(value)) }

// AddUint appends an unsigned entry as 16 zero-padded hex digits, zerotier-one's form.
func (d *Dictionary) AddUint(key string, v uint64) { d.Add(key, fmt.Appendf(nil, "%016x", v)) }

// AddInt appends a signed entry ("-" and 16 hex digits if negative).
func (d *Dictionary) AddInt(key string, v int64) {
	if v < 0 {
		d.Add(key, fmt.Appendf(nil, "-%016x", uint64(-v)))
		return
	}
	d.AddUint(key, uint64(v))
}

// AddBool appends "1" or "0".
func (d *Dictionary) AddBool(key string, v bool) {
	b := byte('0')
	if v {
		b = '1'
	}
	d.Add(key, []byte{b})
}

// AddAddress appends a node address as 10 hex digits.
func (d *Dictionary) AddAddress(key string, a ztaddr.Address) { d.AddString(key, a.String()) }
