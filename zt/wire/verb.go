package wire

import "fmt"

// Verb is a packet's message type.
type Verb uint8

// Verbs (node/Packet.hpp).
const (
	VerbNOP                    Verb = 0x00
	VerbHello                  Verb = 0x01
	VerbError                  Verb = 0x02
	VerbOK                     Verb = 0x03
	VerbWhois                  Verb = 0x04
	VerbRendezvous             Verb = 0x05
	VerbFrame                  Verb = 0x06
	VerbExtFrame               Verb = 0x07
	VerbEcho                   Verb = 0x08
	VerbMulticastLike          Verb = 0x09
	VerbNetworkCredentials     Verb = 0x0a
	VerbNetworkConfigRequest   Verb = 0x0b
	VerbNetworkConfig          Verb = 0x0c
	VerbMulticastGather        Verb = 0x0d
	VerbMulticastFrame         Verb = 0x0e
	VerbPushDirectPaths        Verb = 0x10
	VerbACK                    Verb = 0x12
	VerbQoSMeasurement         Verb = 0x13
	VerbUserMessage            Verb = 0x14
	VerbRemoteTrace            Verb = 0x15
	VerbPathNegotiationRequest Verb = 0x16
)

var verbNames = map[Verb]string{
	VerbNOP: "NOP", VerbHello: "HELLO", VerbError: "ERROR", VerbOK: "OK", VerbWhois: "WHOIS",
	VerbRendezvous: "RENDEZVOUS", VerbFrame: "FRAME", VerbExtFrame: "EXT_FRAME", VerbEcho: "ECHO",
	VerbMulticastLike: "MULTICAST_LIKE", VerbNetworkCredentials: "NETWORK_CREDENTIALS",
	VerbNetworkConfigRequest: "NETWORK_CONFIG_REQUEST", VerbNetworkConfig: "NETWORK_CONFIG",
	VerbMulticastGather: "MULTICAST_GATHER", VerbMulticastFrame: "MULTICAST_FRAME",
	VerbPushDirectPaths: "PUSH_DIRECT_PATHS", VerbACK: "ACK", VerbQoSMeasurement: "QOS_MEASUREMENT",
	VerbUserMessage: "USER_MESSAGE", VerbRemoteTrace: "REMOTE_TRACE",
	VerbPathNegotiationRequest: "PATH_NEGOTIATION_REQUEST",
}

func (v Verb) String() string {
	if s, ok := verbNames[v]; ok {
		return s
	}
	return fmt.Sprintf("VERB_%#02x", uint8(v))
}

// ErrorCode is the code of an ERROR packet.
type ErrorCode uint8

// Error codes.
const (
	ErrorNone                          ErrorCode = 0x00
	ErrorInvalidRequest                ErrorCode = 0x01
	ErrorBadProtocolVersion            ErrorCode = 0x02
	ErrorObjectNotFound                ErrorCode = 0x03
	ErrorIdentityCollision             ErrorCode = 0x04
	ErrorUnsupportedOperation          ErrorCode = 0x05
	ErrorNeedMembershipCertificate     ErrorCode = 0x06
	ErrorNetworkAccessDenied           ErrorCode = 0x07
	ErrorUnwantedMulticast             ErrorCode = 0x08
	ErrorNetworkAuthenticationRequired ErrorCode = 0x09
)
