package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Message is a decoded verb payload. Append appends its encoding (the payload after the verb
// byte); every type here re-encodes a payload it decoded from zerotier-one byte for byte.
type Message interface {
	Append(b []byte) []byte
}

// ErrBadPayload is returned for payloads that do not decode.
var ErrBadPayload = errors.New("bad payload")

func payloadErr(v fmt.Stringer, r *bin.Reader) error {
	if r.Err == nil {
		return nil
	}
	if errors.Is(r.Err, ErrBadPayload) {
		return r.Err
	}
	return fmt.Errorf("%w: %s: %v", ErrBadPayload, v, r.Err)
}

// ParseMessage decodes the payload of verb v. Verbs without a payload structure of their own
// (ECHO, NOP) and verbs a node may ignore (ACK, QOS_MEASUREMENT, REMOTE_TRACE,
// PATH_NEGOTIATION_REQUEST, unknown ones) decode to Opaque.
func ParseMessage(v Verb, payload []byte) (Message, error) {
	switch v {
	case VerbHello:
		return ParseHello(payload)
	case VerbOK:
		return ParseOK(payload)
	case VerbError:
		return ParseError(payload)
	case VerbWhois:
		return ParseWhois(payload)
	case VerbRendezvous:
		return ParseRendezvous(payload)
	case VerbFrame:
		f, err := ParseFrame(payload)
		if err != nil {
			return nil, err
		}
		return &f, nil
	case VerbExtFrame:
		return ParseExtFrame(payload)
	case VerbMulticastLike:
		return ParseMulticastLike(payload)
	case VerbNetworkCredentials:
		return ParseNetworkCredentials(payload)
	case VerbNetworkConfigRequest:
		return ParseConfigRequest(payload)
	case VerbNetworkConfig:
		return ParseConfigChunk(payload)
	case VerbMulticastGather:
		return ParseMulticastGather(payload)
	case VerbMulticastFrame:
		return ParseMulticastFrame(payload)
	case VerbPushDirectPaths:
		return ParsePushDirectPaths(payload)
	case VerbUserMessage:
		return ParseUserMessage(payload)
	}
	return Opaque(append([]byte{}, payload...)), nil
}

// Opaque is a payload carried as bytes: ECHO and OK(ECHO) data, NOP, and verbs a node may
// ignore.
type Opaque []byte

// Append appends the bytes.
func (o Opaque) Append(b []byte) []byte { return append(b, o...) }

// OKMessage is the envelope of an OK: what it answers, then a verb-specific body.
type OKMessage struct {
	InReVerb Verb
	InReID   uint64 // the on-wire packet ID of the request
	Body     []byte
}

// ParseOK decodes an OK envelope.
func ParseOK(payload []byte) (*OKMessage, error) {
	r := bin.Reader{B: payload}
	m := &OKMessage{InReVerb: Verb(r.U8()), InReID: r.U64()}
	m.Body = r.Copy(r.Len())
	return m, payloadErr(VerbOK, &r)
}

// Append appends the encoding.
func (m *OKMessage) Append(b []byte) []byte {
	return append(AppendOKHeader(b, m.InReVerb, m.InReID), m.Body...)
}

// AppendOKHeader appends the envelope of an OK; append the body after it.
func AppendOKHeader(b []byte, inReVerb Verb, inReID uint64) []byte {
	return bin.AppendU64(append(b, byte(inReVerb)), inReID)
}

// Decode decodes the body according to the verb it answers: HelloOK, WhoisOK, ConfigChunk,
// GatherResult, MulticastFrameOK, ExtFrameOK; Opaque for ECHO and others.
func (m *OKMessage) Decode() (Message, error) {
	switch m.InReVerb {
	case VerbHello:
		return ParseHelloOK(m.Body)
	case VerbWhois:
		return ParseWhoisOK(m.Body)
	case VerbNetworkConfigRequest:
		return ParseConfigChunk(m.Body)
	case VerbMulticastGather:
		return ParseGatherResult(m.Body)
	case VerbMulticastFrame:
		return ParseMulticastFrameOK(m.Body)
	case VerbExtFrame:
		return ParseExtFrameOK(m.Body)
	}
	return Opaque(append([]byte{}, m.Body...)), nil
}

// ErrorMessage is an ERROR: what it answers, a code, and code-specific data.
type ErrorMessage struct {
	InReVerb Verb
	InReID   uint64
	Code     ErrorCode
	Data     []byte
}

// ParseError decodes an ERROR.
func ParseError(payload []byte) (*ErrorMessage, error) {
	r := bin.Reader{B: payload}
	m := &ErrorMessage{InReVerb: Verb(r.U8()), InReID: r.U64(), Code: ErrorCode(r.U8())}
	m.Data = r.Copy(r.Len())
	return m, payloadErr(VerbError, &r)
}

// NewNetworkError builds the ERROR for codes that carry just a network ID (OBJ_NOT_FOUND,
// UNSUPPORTED_OPERATION, NEED_MEMBERSHIP_CERTIFICATE, NETWORK_ACCESS_DENIED).
func NewNetworkError(inReVerb Verb, inReID uint64, code ErrorCode, nwid ztaddr.NetworkID) *ErrorMessage {
	return &ErrorMessage{InReVerb: inReVerb, InReID: inReID, Code: code, Data: bin.AppendU64(nil, uint64(nwid))}
}

// Append appends the encoding.
func (m *ErrorMessage) Append(b []byte) []byte {
	b = append(AppendOKHeader(b, m.InReVerb, m.InReID), byte(m.Code))
	return append(b, m.Data...)
}

// NetworkID is the network an error is about, for the codes that name one.
func (m *ErrorMessage) NetworkID() (ztaddr.NetworkID, bool) {
	if len(m.Data) < 8 {
		return 0, false
	}
	return ztaddr.NetworkID(binary.BigEndian.Uint64(m.Data)), true
}

// UnwantedGroup is the group of an UNWANTED_MULTICAST error.
func (m *ErrorMessage) UnwantedGroup() (ztaddr.NetworkID, ztaddr.MulticastGroup, bool) {
	if m.Code != ErrorUnwantedMulticast || len(m.Data) < 18 {
		return 0, ztaddr.MulticastGroup{}, false
	}
	r := bin.Reader{B: m.Data}
	return ztaddr.NetworkID(r.U64()), r.Group(), true
}

// AuthenticationInfo is the SSO dictionary an AUTHENTICATION_REQUIRED error may carry.
func (m *ErrorMessage) AuthenticationInfo() (*netconf.Dictionary, bool) {
	if m.Code != ErrorNetworkAuthenticationRequired || len(m.Data) < 10 {
		return nil, false
	}
	r := bin.Reader{B: m.Data[8:]}
	d := r.Take(int(r.U16()))
	if r.Err != nil {
		return nil, false
	}
	return netconf.ParseDictionary(d), true
}

// trailing returns the unread bytes, which zerotier-one ignores (later versions may append
// fields); messages keep them so that they re-encode unchanged.
func trailing(r *bin.Reader) []byte {
	if r.Err != nil || r.Len() == 0 {
		return nil
	}
	return r.Copy(r.Len())
}
