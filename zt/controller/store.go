package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// store is the controller database in zerotier-one's FileDB layout:
//
//	controller.d/network/<nwid>.json              network records
//	controller.d/network/<nwid>/member/<addr>.json member records
//
// Every record is held in memory and written through on change; a record's "revision" grows by
// one each time it is saved with different contents. A store is not safe for concurrent use.
type store struct {
	dir      string
	networks map[ztaddr.NetworkID]*networkRecords
}

type networkRecords struct {
	network *network
	members map[ztaddr.Address]*member
}

// Record file modes: network records may hold auth tokens.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// openStore loads every record under dir (creating it if needed). Records that cannot be read
// are reported together, each with its file name; nothing is loaded then, so that a broken file
// is never silently replaced.
func openStore(dir string) (*store, error) {
	s := &store{dir: dir, networks: map[ztaddr.NetworkID]*networkRecords{}}
	for _, d := range []string{dir, s.path("network"), s.path("trace")} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("controller database: %w", err)
		}
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return nil, fmt.Errorf("controller database: %w", err)
	}
	var errs []error
	for _, name := range recordFiles(s.path("network"), 16) {
		path := s.path("network", name)
		n := &network{}
		if err := readRecord(path, n); err != nil {
			errs = append(errs, err)
			continue
		}
		nwid, err := ztaddr.ParseNetworkID(n.ID)
		if err != nil || nwid.String()+".json" != name {
			errs = append(errs, fmt.Errorf("%s: \"id\" %q does not match the file name", path, n.ID))
			continue
		}
		recs := &networkRecords{network: n, members: map[ztaddr.Address]*member{}}
		s.networks[nwid] = recs
		memberDir := s.path("network", nwid.String(), "member")
		for _, mname := range recordFiles(memberDir, 10) {
			mpath := filepath.Join(memberDir, mname)
			m := &member{}
			if err := readRecord(mpath, m); err != nil {
				errs = append(errs, err)
				continue
			}
			addr, err := ztaddr.ParseAddress(m.ID) // the API keeps the case it was given
			if err != nil || addr.String()+".json" != mname {
				errs = append(errs, fmt.Errorf("%s: \"id\" %q does not match the file name", mpath, m.ID))
				continue
			}
			recs.members[addr] = m
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("controller database: %w", errors.Join(errs...))
	}
	return s, nil
}

func (s *store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// recordFiles lists the "<hex>.json" files of a directory whose hex part has idLen lowercase
// digits; other entries (temporary files, editor backups) are not records.
func recordFiles(dir string, idLen int) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && len(id) == idLen && strings.Trim(id, "0123456789abcdef") == "" && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names
}

// readRecord decodes one record file, naming the file and the position in any error.
func readRecord(path string, v json.Unmarshaler) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := v.UnmarshalJSON(b); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(b, se.Offset)
			return fmt.Errorf("%s:%d:%d: %v", path, line, col, err)
		}
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 1), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, int(off) - bytes.LastIndexByte(before, '\n') - 1
}

// network returns the stored record (not to be modified) of a network.
func (s *store) network(nwid ztaddr.NetworkID) (*network, bool) {
	r, ok := s.networks[nwid]
	if !ok {
		return nil, false
	}
	return r.network, true
}

// member returns the stored record (not to be modified) of a member.
func (s *store) member(nwid ztaddr.NetworkID, addr ztaddr.Address) (*member, bool) {
	r, ok := s.networks[nwid]
	if !ok {
		return nil, false
	}
	m, ok := r.members[addr]
	return m, ok
}

// networkIDs lists the networks in ascending order.
func (s *store) networkIDs() []ztaddr.NetworkID {
	return slices.Sorted(maps.Keys(s.networks))
}

// members lists a network's members in ascending address order.
func (s *store) members(nwid ztaddr.NetworkID) []*member {
	r, ok := s.networks[nwid]
	if !ok {
		return nil
	}
	var out []*member
	for _, a := range slices.Sorted(maps.Keys(r.members)) {
		out = append(out, r.members[a])
	}
	return out
}

// saveNetwork stores n, which the store keeps (callers pass a copy they no longer touch). If
// it differs from the stored record other than by revision, its revision is incremented and it
// is written; changed reports whether that happened.
func (s *store) saveNetwork(nwid ztaddr.NetworkID, n *network) (changed bool, err error) {
	r, exists := s.networks[nwid]
	if exists && sameRecord(r.network, n, &r.network.Revision, &n.Revision) {
		return false, nil
	}
	n.Revision++
	if err := s.write(s.path("network", nwid.String()+".json"), n); err != nil {
		n.Revision--
		return false, err
	}
	if !exists {
		r = &networkRecords{members: map[ztaddr.Address]*member{}}
		s.networks[nwid] = r
	}
	r.network = n
	return true, nil
}

// saveMember is saveNetwork for a member of an existing network.
func (s *store) saveMember(nwid ztaddr.NetworkID, addr ztaddr.Address, m *member) (changed bool, err error) {
	r, exists := s.networks[nwid]
	if !exists {
		return false, fmt.Errorf("save member %s: network %s does not exist", addr, nwid)
	}
	old, had := r.members[addr]
	if had && sameRecord(old, m, &old.Revision, &m.Revision) {
		return false, nil
	}
	m.Revision++
	dir := s.path("network", nwid.String(), "member")
	if err := os.MkdirAll(dir, dirMode); err != nil {
		m.Revision--
		return false, fmt.Errorf("save member %s: %w", addr, err)
	}
	if err := s.write(filepath.Join(dir, addr.String()+".json"), m); err != nil {
		m.Revision--
		return false, err
	}
	r.members[addr] = m
	return true, nil
}

// deleteNetwork removes a network and its members, returning what was removed.
func (s *store) deleteNetwork(nwid ztaddr.NetworkID) (*network, []*member, error) {
	r, ok := s.networks[nwid]
	if !ok {
		return nil, nil, fs.ErrNotExist
	}
	members := s.members(nwid)
	if err := os.Remove(s.path("network", nwid.String()+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("delete network %s: %w", nwid, err)
	}
	delete(s.networks, nwid)
	if err := os.RemoveAll(s.path("network", nwid.String())); err != nil {
		return r.network, members, fmt.Errorf("delete network %s members: %w", nwid, err)
	}
	return r.network, members, nil
}

// deleteMember removes a member, returning its record.
func (s *store) deleteMember(nwid ztaddr.NetworkID, addr ztaddr.Address) (*member, error) {
	m, ok := s.member(nwid, addr)
	if !ok {
		return nil, fs.ErrNotExist
	}
	path := s.path("network", nwid.String(), "member", addr.String()+".json")
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("delete member %s: %w", addr, err)
	}
	delete(s.networks[nwid].members, addr)
	return m, nil
}

// sameRecord compares two records' encodings, ignoring their revision counters.
func sameRecord(a, b json.Marshaler, revA, revB *uint64) bool {
	ra, rb := *revA, *revB
	*revA, *revB = 0, 0
	ea, errA := a.MarshalJSON()
	eb, errB := b.MarshalJSON()
	*revA, *revB = ra, rb
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// write encodes a record to path atomically: a reader or a crash sees the old file or the new
// one, never a mix.
func (s *store) write(path string, v json.Marshaler) error {
	b, err := v.MarshalJSON()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeFileAtomic(path, b, fileMode)
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and renames it over
// path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
