package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// LZ4 block format constants (LZ4 1.7.5, which zerotier-one embeds).
const (
	lz4MinMatch     = 4
	lz4LastLiterals = 5
	lz4MFLimit      = 12
	lz4HashLog      = 13 // LZ4_HASHLOG+1 for the 16-bit table used below 64 KiB
	lz4SkipTrigger  = 6
	lz4RunMask      = 15
	lz4MLMask       = 15
	// compressMinPayload: zerotier-one only tries to compress payloads longer than this.
	compressMinPayload = 64
)

// ErrBadCompression is returned for LZ4 data that does not decode within the limits.
var ErrBadCompression = errors.New("bad LZ4 data")

// Compress LZ4-compresses p's payload into dst (reusing its capacity; dst must not overlap p)
// like zerotier-one does: only payloads over 64 bytes, and only if the result is smaller. It
// returns the compressed packet (verb flag set), or p itself with the flag cleared. Call it
// before Armor.
func Compress(dst []byte, p Packet) Packet {
	p[idxVerb] &^= verbFlagCompressed
	if len(p.Payload()) <= compressMinPayload {
		return p
	}
	out := append(dst[:0], p[:HeaderSize]...)
	out = lz4Compress(out, p.Payload())
	if len(out) >= len(p) {
		return p
	}
	out[idxVerb] |= verbFlagCompressed
	return Packet(out)
}

// Decompress returns p with its payload decompressed into dst (reusing its capacity) if p is
// flagged compressed, else p. dst must not overlap p; the result is at most MaxPacketSize bytes.
func Decompress(dst []byte, p Packet) (Packet, error) {
	if !p.Compressed() {
		return p, nil
	}
	out := append(dst[:0], p[:HeaderSize]...)
	out, err := lz4Decompress(out, p.Payload(), MaxPacketSize)
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", Packet(out).Verb(), err)
	}
	out[idxVerb] &^= verbFlagCompressed
	return Packet(out), nil
}

// lz4Decompress appends the decoding of the LZ4 block src to dst, refusing to grow dst beyond
// limit bytes in total.
func lz4Decompress(dst, src []byte, limit int) ([]byte, error) {
	start := len(dst)
	readLen := func(i int, n int) (int, int, error) {
		if n != 15 {
			return n, i, nil
		}
		for {
			if i >= len(src) {
				return 0, i, ErrBadCompression
			}
			b := src[i]
			i++
			n += int(b)
			if n > limit {
				return 0, i, ErrBadCompression
			}
			if b != 255 {
				return n, i, nil
			}
		}
	}
	for i := 0; ; {
		if i >= len(src) {
			return dst, fmt.Errorf("%w: missing final literals", ErrBadCompression)
		}
		token := src[i]
		i++
		lit, i2, err := readLen(i, int(token>>4))
		if err != nil {
			return dst, err
		}
		i = i2
		if lit > len(src)-i || len(dst)+lit > limit {
			return dst, fmt.Errorf("%w: literals overrun", ErrBadCompression)
		}
		dst = append(dst, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			return dst, nil // the last sequence has literals only
		}
		if len(src)-i < 2 {
			return dst, fmt.Errorf("%w: truncated offset", ErrBadCompression)
		}
		off := int(binary.LittleEndian.Uint16(src[i:]))
		i += 2
		if off == 0 || off > len(dst)-start {
			return dst, fmt.Errorf("%w: offset %d", ErrBadCompression, off)
		}
		ml, i2, err := readLen(i, int(token&15))
		if err != nil {
			return dst, err
		}
		i = i2
		ml += lz4MinMatch
		if len(dst)+ml > limit {
			return dst, fmt.Errorf("%w: output over %d bytes", ErrBadCompression, limit)
		}
		from := len(dst) - off
		if off >= ml {
			dst = append(dst, dst[from:from+ml]...)
		} else {
			for k := range ml { // overlapping copy repeats the last off bytes
				dst = append(dst, dst[from+k])
			}
		}
	}
}

// lz4Compress appends the LZ4 block encoding of src (< 64 KiB) to dst, byte for byte what
// LZ4_compress_fast(acceleration 1) of LZ4 1.7.5 produces, so that re-encoded packets match
// zerotier-one's.
func lz4Compress(dst, src []byte) []byte {
	n := len(src)
	anchor := 0
	if n >= lz4MFLimit+1 {
		var table [1 << lz4HashLog]uint16 // positions; an empty slot means position 0, as in LZ4
		hash := func(i int) uint32 { return binary.LittleEndian.Uint32(src[i:]) * 2654435761 >> (32 - lz4HashLog) }
		read32 := func(i int) uint32 { return binary.LittleEndian.Uint32(src[i:]) }
		mflimit := n - lz4MFLimit
		matchLimit := n - lz4LastLiterals
		table[hash(0)] = 0
		ip := 1
		forwardH := hash(ip)
	search:
		for {
			// Find a match, skipping faster the longer nothing is found.
			var match int
			forwardIp, step, searchMatchNb := ip, 1, 1<<lz4SkipTrigger
			for {
				h := forwardH
				ip = forwardIp
				forwardIp += step
				step = searchMatchNb >> lz4SkipTrigger
				searchMatchNb++
				if forwardIp > mflimit {
					break search
				}
				match = int(table[h])
				forwardH = hash(forwardIp)
				table[h] = uint16(ip)
				if read32(match) == read32(ip) {
					break
				}
			}
			for ip > anchor && match > 0 && src[ip-1] == src[match-1] {
				ip--
				match--
			}
			token := len(dst)
			dst = appendLZ4Len(append(dst, 0), token, ip-anchor, 4)
			dst = append(dst, src[anchor:ip]...)
			for {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(ip-match))
				ml := lz4Count(src, ip+lz4MinMatch, match+lz4MinMatch, matchLimit)
				ip += lz4MinMatch + ml
				dst = appendLZ4Len(dst, token, ml, 0)
				anchor = ip
				if ip > mflimit {
					break search
				}
				table[hash(ip-2)] = uint16(ip - 2)
				h := hash(ip)
				match = int(table[h])
				table[h] = uint16(ip)
				if read32(match) != read32(ip) {
					break
				}
				token = len(dst)
				dst = append(dst, 0)
			}
			ip++
			forwardH = hash(ip)
		}
	}
	token := len(dst)
	dst = appendLZ4Len(append(dst, 0), token, n-anchor, 4)
	return append(dst, src[anchor:]...)
}

// appendLZ4Len stores length v in the token nibble at shift (4 = literals, 0 = match) and
// appends its 255-run extension.
func appendLZ4Len(dst []byte, token, v, shift int) []byte {
	if v < 15 {
		dst[token] |= byte(v << shift)
		return dst
	}
	dst[token] |= 15 << shift
	for v -= 15; v >= 255; v -= 255 {
		dst = append(dst, 255)
	}
	return append(dst, byte(v))
}

// lz4Count counts equal bytes at src[i:] and src[m:], stopping at limit.
func lz4Count(src []byte, i, m, limit int) int {
	start := i
	for i < limit && src[i] == src[m] {
		i++
		m++
	}
	return i - start
}
