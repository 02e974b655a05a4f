package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// API bodies are read the way zerotier-one reads them: a field that is present is converted
// from whatever JSON type it has (a boolean may arrive as "true", 1 or true; a number as "32"),
// and a field of an unusable type falls back to a default. Values come from decodeJSON, so
// numbers are json.Number.

// decodeJSON parses one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// number returns v as a json.Number if it is a number: decoded JSON numbers are json.Number
// already; Go integers appear in values this package built itself.
func number(v any) (json.Number, bool) {
	switch n := v.(type) {
	case json.Number:
		return n, true
	case uint8, uint16, uint32, uint64, uint, int8, int16, int32, int64, int:
		return json.Number(fmt.Sprint(n)), true
	case float64:
		return json.Number(strconv.FormatFloat(n, 'g', -1, 64)), true
	}
	return "", false
}

// jsonBool is true for true, a number > 0, or a string starting with t, T or 1.
func jsonBool(v any, dfl bool) bool {
	if n, ok := number(v); ok {
		v = n
	}
	switch v := v.(type) {
	case bool:
		return v
	case json.Number:
		return numberToUint(v) > 0
	case string:
		return v != "" && (v[0] == 't' || v[0] == 'T' || v[0] == '1')
	}
	return dfl
}

// jsonUint converts numbers, decimal strings (as strtoull reads them) and booleans.
func jsonUint(v any, dfl uint64) uint64 {
	if n, ok := number(v); ok {
		v = n
	}
	switch v := v.(type) {
	case json.Number:
		return numberToUint(v)
	case string:
		return parseUintPrefix(v, 10)
	case bool:
		if v {
			return 1
		}
		return 0
	}
	return dfl
}

// jsonString returns strings as they are, numbers in decimal and booleans as "1"/"0".
func jsonString(v any, dfl string) string {
	if n, ok := number(v); ok {
		v = n
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return strconv.FormatUint(numberToUint(v), 10)
	case bool:
		if v {
			return "1"
		}
		return "0"
	}
	return dfl
}

// numberToUint converts like a C cast to uint64: negative integers wrap, fractions truncate.
func numberToUint(n json.Number) uint64 {
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return uint64(i)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	switch {
	case err != nil || math.IsNaN(f):
		return 0
	case f >= 0 && f < math.MaxUint64:
		return uint64(f)
	case f < 0 && f > math.MinInt64:
		return uint64(int64(f))
	}
	return 0
}

// isNonNegativeNumber reports whether v is a JSON number ≥ 0.
func isNonNegativeNumber(v any) bool {
	n, ok := number(v)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return err == nil && f >= 0
}

// parseUintPrefix reads an unsigned integer the way strtoull does: leading space, an optional
// sign (a minus negates modulo 2^64), then as many digits of base as there are; "0x" is
// skipped in base 16. Anything unreadable gives 0, an overflow gives MaxUint64.
func parseUintPrefix(s string, base uint64) uint64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if base == 16 && len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && hexDigit(s[2]) >= 0 {
		s = s[2:]
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if v > (math.MaxUint64-uint64(d))/base {
			return math.MaxUint64
		}
		v = v*base + uint64(d)
	}
	if neg {
		return -v
	}
	return v
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// inet is zerotier-one's "ip/port" notation, where the port field carries a prefix length in
// routes and pools and is absent (0) in plain addresses.
type inet struct {
	IP   netip.Addr
	Port int
}

// maxInetString is the longest "ip/port" text zerotier-one accepts (its buffer holds 63).
const maxInetString = 63

// parseInet reads "ip" or "ip/port" as zerotier-one does: the family is chosen by the presence
// of ':' (IPv6) or '.' (IPv4), an address of that family that does not parse reads as :: or
// 0.0.0.0, and the port is the decimal prefix after '/', modulo 2^16. Text with neither ':'
// nor '.', or longer than 63 bytes, is not an address.
func parseInet(s string) (inet, bool) {
	if len(s) > maxInetString {
		return inet{}, false
	}
	ip, port, hasPort := strings.Cut(s, "/")
	var a inet
	if hasPort {
		a.Port = int(parseUintPrefix(port, 10) & 0xffff)
	}
	var err error
	switch {
	case strings.Contains(ip, ":"):
		a.IP, err = netip.ParseAddr(ip)
		if err != nil || a.IP.Zone() != "" || !a.IP.Is6() {
			a.IP = netip.IPv6Unspecified()
		}
	case strings.Contains(ip, "."):
		a.IP, err = netip.ParseAddr(ip)
		if err != nil || !a.IP.Is4() {
			a.IP = netip.IPv4Unspecified()
		}
	default:
		return inet{}, false
	}
	return a, true
}

// String is "ip/port", zerotier-one's InetAddress::toString.
func (a inet) String() string { return a.IP.String() + "/" + strconv.Itoa(a.Port) }

// prefixBitsValid reports whether the port field can be a prefix length for the family.
func (a inet) prefixBitsValid() bool { return a.Port <= a.IP.BitLen() }

// contains reports whether ip lies in the network whose prefix length is the port field, as
// zerotier-one's InetAddress::containsAddress decides it: an IPv4 network's host bits are
// ignored, while an IPv6 network with host bits set contains nothing.
func (a inet) contains(ip netip.Addr) bool {
	if ip.Is4() != a.IP.Is4() {
		return false
	}
	p, err := a.IP.Prefix(min(a.Port, a.IP.BitLen()))
	if err != nil {
		return false
	}
	return p.Contains(ip) && (a.IP.Is4() || p.Addr() == a.IP)
}
