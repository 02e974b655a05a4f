package wire

import (
	"errors"
	"fmt"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/internal/bin"
	"github.com/ztnc/ztnc/zt/netconf"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Limits of config delivery (zerotier-one 1.14.1).
const (
	// MaxConfigChunk is the most dictionary bytes a controller puts in one chunk.
	MaxConfigChunk = MaxPacketSize - (HeaderSize + 256)
	// MaxConfigSize bounds a whole config dictionary.
	MaxConfigSize = 484520
	// maxConcurrentUpdates is how many configs can be in assembly at once.
	maxConcurrentUpdates = 3
	maxUpdateChunks      = MaxConfigSize/1024 + 1
	// ConfigChunkFastPropagate asks members to pass a chunk on to the others.
	ConfigChunkFastPropagate = 0x01
)

// ConfigRequest is a NETWORK_CONFIG_REQUEST: a member asks the controller for its config.
type ConfigRequest struct {
	NetworkID ztaddr.NetworkID
	Metadata  []byte // Dictionary text (see netconf.RequestMetadata)
	Revision  uint64 // of the config the member has, 0 if none
	Timestamp uint64 // of the config the member has, 0 if none
	Trailing  []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the payload.
func (q *ConfigRequest) Append(b []byte) []byte {
	b = bin.AppendU16(bin.AppendU64(b, uint64(q.NetworkID)), uint16(len(q.Metadata)))
	b = append(b, q.Metadata...)
	return append(bin.AppendU64(bin.AppendU64(b, q.Revision), q.Timestamp), q.Trailing...)
}

// ParseConfigRequest decodes a NETWORK_CONFIG_REQUEST (the revision and timestamp are optional,
// as for zerotier-one).
func ParseConfigRequest(payload []byte) (*ConfigRequest, error) {
	r := bin.Reader{B: payload}
	q := &ConfigRequest{NetworkID: ztaddr.NetworkID(r.U64())}
	q.Metadata = r.Copy(int(r.U16()))
	if r.Len() >= 16 {
		q.Revision, q.Timestamp = r.U64(), r.U64()
	}
	q.Trailing = trailing(&r)
	return q, payloadErr(VerbNetworkConfigRequest, &r)
}

// MetadataDictionary parses the metadata.
func (q *ConfigRequest) MetadataDictionary() *netconf.Dictionary {
	return netconf.ParseDictionary(q.Metadata)
}

// ConfigChunk is one signed piece of a network config dictionary: the body of
// OK(NETWORK_CONFIG_REQUEST) or the payload of NETWORK_CONFIG.
type ConfigChunk struct {
	NetworkID ztaddr.NetworkID
	Data      []byte
	// Legacy marks an unsigned single-chunk config (the payload ends after Data), accepted
	// only from the controller itself in OK(NETWORK_CONFIG_REQUEST).
	Legacy      bool
	Flags       uint8
	UpdateID    uint64 // same for all chunks of one config, never 0
	TotalLength uint32 // of the whole dictionary
	Index       uint32 // byte offset of Data in the dictionary
	Signature   identity.Signature
	Trailing    []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

func (c *ConfigChunk) appendSigned(b []byte) []byte {
	b = bin.AppendU16(bin.AppendU64(b, uint64(c.NetworkID)), uint16(len(c.Data)))
	b = append(b, c.Data...)
	if c.Legacy {
		return b
	}
	b = bin.AppendU64(append(b, c.Flags), c.UpdateID)
	return bin.AppendU32(bin.AppendU32(b, c.TotalLength), c.Index)
}

// Append appends the encoding.
func (c *ConfigChunk) Append(b []byte) []byte {
	b = c.appendSigned(b)
	if c.Legacy {
		return b
	}
	b = append(b, 1, 0, identity.SignatureSize)
	return append(append(b, c.Signature[:]...), c.Trailing...)
}

// ParseConfigChunk decodes a config chunk.
func ParseConfigChunk(payload []byte) (*ConfigChunk, error) {
	r := bin.Reader{B: payload}
	c := &ConfigChunk{NetworkID: ztaddr.NetworkID(r.U64())}
	c.Data = r.Copy(int(r.U16()))
	if r.Err == nil && r.Len() == 0 {
		c.Legacy = true
		return c, nil
	}
	c.Flags, c.UpdateID, c.TotalLength, c.Index = r.U8(), r.U64(), r.U32(), r.U32()
	if t, n := r.U8(), r.U16(); r.Err == nil && (t != 1 || n != identity.SignatureSize) {
		r.Fail(fmt.Errorf("%w: config chunk signature type %d length %d", ErrBadPayload, t, n))
	}
	copy(c.Signature[:], r.Take(identity.SignatureSize))
	c.Trailing = trailing(&r)
	return c, payloadErr(VerbNetworkConfig, &r)
}

// Sign signs the chunk as the network's controller.
func (c *ConfigChunk) Sign(controller *identity.Identity) (err error) {
	c.Signature, err = controller.Sign(c.appendSigned(nil))
	return err
}

// Verify checks the controller's signature (legacy chunks have none and fail).
func (c *ConfigChunk) Verify(controller *identity.Identity) error {
	if c.Legacy {
		return fmt.Errorf("config chunk: %w", netconf.ErrUnsigned)
	}
	if controller.Address() != c.NetworkID.Controller() {
		return fmt.Errorf("config chunk for %s: %w", c.NetworkID, netconf.ErrWrongSigner)
	}
	if !controller.Verify(c.appendSigned(nil), c.Signature[:]) {
		return fmt.Errorf("config chunk: %w", identity.ErrBadSignature)
	}
	return nil
}

// SplitConfig cuts a config dictionary into signed chunks the way a 1.14 controller does.
// updateID must be random and non-zero.
func SplitConfig(dict []byte, nwid ztaddr.NetworkID, updateID uint64, controller *identity.Identity) ([]*ConfigChunk, error) {
	if len(dict) >= MaxConfigSize {
		return nil, fmt.Errorf("config of %d bytes: %w", len(dict), ErrTooLarge)
	}
	var chunks []*ConfigChunk
	for i := 0; i < len(dict); i += MaxConfigChunk {
		c := &ConfigChunk{NetworkID: nwid, Data: dict[i:min(len(dict), i+MaxConfigChunk)], UpdateID: updateID,
			TotalLength: uint32(len(dict)), Index: uint32(i)}
		if err := c.Sign(controller); err != nil {
			return nil, err
		}
		chunks = append(chunks, c)
	}
	return chunks, nil
}

// ErrConfigChunk is returned for chunks the assembler refuses.
var ErrConfigChunk = errors.New("config chunk refused")

// ConfigAssembler collects the chunks of a network's configs, like zerotier-one: signatures
// checked, duplicates dropped, up to 3 updates in progress (the least recently used is
// replaced). It is not safe for concurrent use.
type ConfigAssembler struct {
	updates [maxConcurrentUpdates]configUpdate
	clock   uint64
}

type configUpdate struct {
	id     uint64
	used   uint64
	chunks map[[16]byte]bool
	bytes  int
	data   []byte
}

// Add files a chunk received from source for the network controlled by controller. When the
// chunk completes a config it returns the dictionary text and the update ID.
func (a *ConfigAssembler) Add(c *ConfigChunk, source ztaddr.Address, controller *identity.Identity) ([]byte, uint64, error) {
	var chunkID [16]byte
	updateID, total, index := c.UpdateID, int(c.TotalLength), int(c.Index)
	if c.Legacy {
		if source != controller.Address() || source != c.NetworkID.Controller() {
			return nil, 0, fmt.Errorf("%w: unsigned config not from the controller", ErrConfigChunk)
		}
		updateID, total, index = 0, len(c.Data), 0
	} else {
		if index+len(c.Data) > total || total >= MaxConfigSize {
			return nil, 0, fmt.Errorf("%w: bytes %d+%d of %d", ErrConfigChunk, index, len(c.Data), total)
		}
		copy(chunkID[:], c.Signature[:16])
	}
	var u *configUpdate
	for i := range a.updates {
		if x := &a.updates[i]; x.chunks != nil && x.id == updateID && !c.Legacy {
			u = x
			if x.chunks[chunkID] {
				return nil, 0, nil // duplicate
			}
			break
		} else if u == nil || x.used < u.used {
			u = x
		}
	}
	if !c.Legacy {
		if err := c.Verify(controller); err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrConfigChunk, err)
		}
	}
	a.clock++
	u.used = a.clock
	if u.chunks == nil || u.id != updateID || c.Legacy {
		*u = configUpdate{id: updateID, used: a.clock, chunks: map[[16]byte]bool{}, data: make([]byte, total)}
	}
	if len(u.chunks) >= maxUpdateChunks || len(u.data) != total {
		return nil, 0, fmt.Errorf("%w: inconsistent update %016x", ErrConfigChunk, updateID)
	}
	u.chunks[chunkID] = true
	copy(u.data[index:], c.Data)
	u.bytes += len(c.Data)
	if u.bytes != total {
		return nil, 0, nil
	}
	data := u.data
	*u = configUpdate{}
	return data, updateID, nil
}

// ConfigAck is the body of the OK that acknowledges a complete config (1.14 quirk: its in-re
// verb is ECHO).
type ConfigAck struct {
	NetworkID ztaddr.NetworkID
	UpdateID  uint64
	Trailing  []byte // bytes after the known fields (ignored by 1.14), kept for re-encoding
}

// Append appends the body.
func (c *ConfigAck) Append(b []byte) []byte {
	return append(bin.AppendU64(bin.AppendU64(b, uint64(c.NetworkID)), c.UpdateID), c.Trailing...)
}

// ParseConfigAck decodes the body of an OK(ECHO) that acknowledges a config.
func ParseConfigAck(body []byte) (*ConfigAck, error) {
	r := bin.Reader{B: body}
	c := &ConfigAck{NetworkID: ztaddr.NetworkID(r.U64()), UpdateID: r.U64()}
	c.Trailing = trailing(&r)
	return c, payloadErr(VerbOK, &r)
}
