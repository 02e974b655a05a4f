package controller

import (
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

// The HTTP API is the part of zerotier-one's local API under /controller that scripts and web
// UIs use, with its paths, JSON and status codes. Two deliberate differences: a body that is
// not JSON gets 400 with {"error":400,"description":…} (zerotier-one answers 500), and
// POST /controller answers like GET.

// maxBodySize bounds request bodies; larger ones get 413.
const maxBodySize = 4 << 20

// AuthTokenFile is the file in the home directory holding the API token.
const AuthTokenFile = "authtoken.secret"

// AuthToken returns the API token from home/authtoken.secret, creating the file (24 random
// characters from [a-z0-9], mode 0600) if it does not exist, as zerotier-one does.
func AuthToken(home string) (string, error) {
	path := filepath.Join(home, AuthTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("%s is empty", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	tok := make([]byte, 0, 24)
	for len(tok) < cap(tok) {
		var b [1]byte
		crand.Read(b[:])
		if b[0] < 252 { // 252 = 7×36: no bias
			tok = append(tok, alphabet[b[0]%36])
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, tok, 0o600); err != nil {
		return "", err
	}
	return string(tok), nil
}

// Handler serves the /controller API to clients on loopback that present token: header
// X-ZT1-Auth, query parameter auth, or Authorization: Bearer.
func (c *Controller) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
	mux.HandleFunc("/controller", c.serveStatus)
	mux.HandleFunc("/controller/network", c.serveNetworks)
	mux.HandleFunc("/controller/network/{nwid}", c.serveNetwork)
	mux.HandleFunc("/controller/network/{nwid}/member", c.serveMembers)
	mux.HandleFunc("/controller/network/{nwid}/member/{addr}", c.serveMember)
	mux.HandleFunc("/unstable/controller/network", c.serveNetworksDetailed)
	mux.HandleFunc("/unstable/controller/network/{nwid}/member", c.serveMembersDetailed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r, token) {
			writeJSON(w, http.StatusUnauthorized, []byte("{}"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodySize)
		mux.ServeHTTP(w, r)
	})
}

// authorized checks the client's address (loopback only) and token the way zerotier-one does:
// the first credential present (header, then query, then bearer) decides.
func authorized(r *http.Request, token string) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	var presented string
	if v := r.Header.Values("X-ZT1-Auth"); len(v) > 0 {
		presented = v[0]
	} else if q := r.URL.Query(); q.Has("auth") {
		presented = q.Get("auth")
	} else if a := strings.Fields(r.Header.Get("Authorization")); len(a) == 2 && strings.EqualFold(a[0], "bearer") {
		presented = a[1]
	} else {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(token)) == 1
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeRecord(w http.ResponseWriter, v any) {
	b, err := encodeJSON(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// getRecord answers a GET of one network or member: its JSON, encoded under c.mu, or 404 if
// find does not have it.
func (c *Controller) getRecord(w http.ResponseWriter, find func() (json.Marshaler, bool)) {
	c.mu.Lock()
	rec, ok := find()
	var b []byte
	var err error
	if ok {
		b, err = rec.MarshalJSON()
	}
	c.mu.Unlock()
	switch {
	case !ok:
		notFound(w)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

// writeError answers with zerotier-one's error object.
func writeError(w http.ResponseWriter, status int, err error) {
	b, _ := encodeJSON(map[string]any{"error": status, "description": err.Error()})
	writeJSON(w, status, b)
}

// notFound is zerotier-one's answer to unknown paths, methods and objects: 404, no body.
func notFound(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }

// readBody decodes a request body: an object's fields, or nil for any other JSON value (which
// changes nothing, as in zerotier-one).
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooBig.Limit))
		} else {
			writeError(w, http.StatusBadRequest, err)
		}
		return nil, false
	}
	v, err := decodeJSON(b)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body is not JSON: %w", err))
		return nil, false
	}
	o, _ := v.(map[string]any)
	return o, true
}

func isWrite(r *http.Request) bool { return r.Method == http.MethodPost || r.Method == http.MethodPut }

func (c *Controller) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		notFound(w)
		return
	}
	body := fmt.Sprintf("{\n\t\"controller\": true,\n\t\"apiVersion\": 4,\n\t\"clock\": %d,\n\t\"databaseReady\": true\n}\n", c.now())
	writeJSON(w, http.StatusOK, []byte(body))
}

func (c *Controller) serveNetworks(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet:
		c.mu.Lock()
		ids := []string{}
		for _, id := range c.db.networkIDs() {
			ids = append(ids, id.String())
		}
		c.mu.Unlock()
		writeRecord(w, ids)
	case isWrite(r):
		c.createNetwork(w, r)
	default:
		notFound(w)
	}
}

// createNetwork makes a network with a random unused number under the controller's address.
func (c *Controller) createNetwork(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	c.mu.Lock()
	var nwid ztaddr.NetworkID
	for range 100000 {
		var b [4]byte
		crand.Read(b[:])
		try := ztaddr.NewNetworkID(c.id.Address(), max(binary.BigEndian.Uint32(b[:])&0xffffff, 1))
		if _, exists := c.db.network(try); !exists {
			nwid = try
			break
		}
	}
	c.mu.Unlock()
	if nwid == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	c.updateNetwork(w, nwid, body)
}

// networkPath parses {nwid}: 16 hex digits, or the controller's address and six underscores
// (create with a random number).
func networkPath(s string) (nwid ztaddr.NetworkID, create bool, ok bool) {
	if prefix, isCreate := strings.CutSuffix(s, "______"); isCreate {
		a, err := ztaddr.ParseAddress(prefix)
		if err != nil || len(prefix) != 10 {
			return 0, false, false
		}
		return ztaddr.NewNetworkID(a, 0), true, true
	}
	if len(s) != 16 {
		return 0, false, false
	}
	id, err := ztaddr.ParseNetworkID(s)
	return id, false, err == nil
}

func (c *Controller) serveNetwork(w http.ResponseWriter, r *http.Request) {
	nwid, create, ok := networkPath(r.PathValue("nwid"))
	switch {
	case !ok:
		notFound(w)
	case create:
		if !isWrite(r) {
			notFound(w)
		} else if nwid.Controller() != c.id.Address() {
			w.WriteHeader(http.StatusBadRequest)
		} else {
			c.createNetwork(w, r)
		}
	case r.Method == http.MethodGet:
		c.getRecord(w, func() (json.Marshaler, bool) { return c.db.network(nwid) })
	case isWrite(r):
		if body, ok := readBody(w, r); ok {
			c.updateNetwork(w, nwid, body)
		}
	case r.Method == http.MethodDelete:
		c.deleteNetwork(w, nwid)
	default:
		notFound(w)
	}
}

// updateNetwork creates or changes a network (like zerotier-one, any ID is accepted here) and
// pushes the change to its online members.
func (c *Controller) updateNetwork(w http.ResponseWriter, nwid ztaddr.NetworkID, body map[string]any) {
	now := c.now()
	c.mu.Lock()
	var n *network
	if old, ok := c.db.network(nwid); ok {
		n = old.clone()
	} else {
		n = newNetwork(nwid, now)
	}
	n.update(body, now)
	n.ID, n.NWID = nwid.String(), nwid.String()
	changed, err := c.db.saveNetwork(nwid, n)
	var b []byte
	if err == nil {
		b, err = n.MarshalJSON()
	}
	c.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if changed {
		c.pushNetwork(nwid)
	}
	writeJSON(w, http.StatusOK, b)
}

// deleteNetwork removes a network and revokes the membership of all its members.
func (c *Controller) deleteNetwork(w http.ResponseWriter, nwid ztaddr.NetworkID) {
	c.mu.Lock()
	n, members, err := c.db.deleteNetwork(nwid)
	var b []byte
	if n != nil {
		b, _ = n.MarshalJSON()
	}
	c.mu.Unlock()
	if n == nil {
		notFound(w)
		return
	}
	for _, m := range members {
		if a, perr := ztaddr.ParseAddress(m.ID); perr == nil {
			c.revoke(nwid, a)
		}
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (c *Controller) serveMembers(w http.ResponseWriter, r *http.Request) {
	nwid, create, ok := networkPath(r.PathValue("nwid"))
	if !ok || create || r.Method != http.MethodGet {
		notFound(w)
		return
	}
	c.mu.Lock()
	_, exists := c.db.network(nwid)
	revisions := map[string]uint64{}
	for _, m := range c.db.members(nwid) {
		revisions[m.ID] = m.Revision
	}
	c.mu.Unlock()
	if !exists {
		notFound(w)
		return
	}
	writeRecord(w, revisions)
}

func (c *Controller) serveMember(w http.ResponseWriter, r *http.Request) {
	nwid, create, ok := networkPath(r.PathValue("nwid"))
	as := r.PathValue("addr")
	addr, err := ztaddr.ParseAddress(as)
	if !ok || create || err != nil || len(as) != 10 {
		notFound(w)
		return
	}
	switch {
	case r.Method == http.MethodGet:
		c.getRecord(w, func() (json.Marshaler, bool) { return c.db.member(nwid, addr) })
	case isWrite(r):
		c.mu.Lock()
		_, exists := c.db.network(nwid)
		c.mu.Unlock()
		if !exists {
			notFound(w)
			return
		}
		if body, ok := readBody(w, r); ok {
			c.updateMember(w, nwid, addr, as, body)
		}
	case r.Method == http.MethodDelete:
		c.deleteMember(w, nwid, addr)
	default:
		notFound(w)
	}
}

// updateMember creates or changes a member record, pushes the change if the member is online
// and revokes its membership if it lost its authorization.
// Like zerotier-one it stores the address as written in the path (pathAddr).
func (c *Controller) updateMember(w http.ResponseWriter, nwid ztaddr.NetworkID, addr ztaddr.Address, pathAddr string, body map[string]any) {
	now := c.now()
	c.mu.Lock()
	var m *member
	wasAuthorized := false
	if old, ok := c.db.member(nwid, addr); ok {
		m, wasAuthorized = old.clone(), old.Authorized
	} else {
		m = newMember(nwid, addr, now)
	}
	err := m.update(body, now)
	if err != nil {
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, err)
		return
	}
	m.ID, m.Address, m.NWID = pathAddr, pathAddr, nwid.String()
	changed, err := c.db.saveMember(nwid, addr, m)
	var b []byte
	if err == nil {
		b, err = m.MarshalJSON()
	}
	c.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if changed {
		c.pushMember(nwid, addr)
		if wasAuthorized && !m.Authorized {
			c.revoke(nwid, addr)
		}
	}
	writeJSON(w, http.StatusOK, b)
}

// deleteMember removes a member record; an authorized member's membership is revoked.
func (c *Controller) deleteMember(w http.ResponseWriter, nwid ztaddr.NetworkID, addr ztaddr.Address) {
	c.mu.Lock()
	m, err := c.db.deleteMember(nwid, addr)
	var b []byte
	if m != nil {
		b, _ = m.MarshalJSON()
	}
	c.mu.Unlock()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		notFound(w)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if m.Authorized {
		c.revoke(nwid, addr)
	}
	writeJSON(w, http.StatusOK, b)
}

// serveNetworksDetailed is /unstable/controller/network: every network with member counts.
func (c *Controller) serveNetworksDetailed(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		notFound(w)
		return
	}
	c.mu.Lock()
	data := []json.RawMessage{}
	for _, id := range c.db.networkIDs() {
		n, _ := c.db.network(id)
		members := c.db.members(id)
		b, err := marshalRecord((*networkFields)(n), withMeta(n.extra, map[string]int{
			"totalMemberCount":      len(members),
			"authorizedMemberCount": countAuthorized(members),
		}))
		if err == nil {
			data = append(data, b)
		}
	}
	c.mu.Unlock()
	writeRecord(w, map[string]any{"data": data, "meta": map[string]int{"networkCount": len(data)}})
}

// serveMembersDetailed is /unstable/controller/network/{nwid}/member: the member records with
// counts.
func (c *Controller) serveMembersDetailed(w http.ResponseWriter, r *http.Request) {
	nwid, create, ok := networkPath(r.PathValue("nwid"))
	if !ok || create || r.Method != http.MethodGet {
		notFound(w)
		return
	}
	c.mu.Lock()
	_, exists := c.db.network(nwid)
	members := c.db.members(nwid)
	data := []json.RawMessage{}
	for _, m := range members {
		if b, err := m.MarshalJSON(); err == nil {
			data = append(data, b)
		}
	}
	c.mu.Unlock()
	if !exists {
		notFound(w)
		return
	}
	writeRecord(w, map[string]any{"data": data, "meta": map[string]int{
		"totalCount": len(members), "authorizedCount": countAuthorized(members),
	}})
}

// withMeta returns extra plus a "meta" field.
func withMeta(extra map[string]json.RawMessage, meta map[string]int) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range extra {
		out[k] = v
	}
	out["meta"], _ = encodeJSON(meta)
	return out
}

func countAuthorized(members []*member) int {
	n := 0
	for _, m := range members {
		if m.Authorized {
			n++
		}
	}
	return n
}
